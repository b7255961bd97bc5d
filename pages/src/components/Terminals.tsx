import { type KeyboardEvent, useEffect, useRef, useState, useSyncExternalStore } from "react";

import { canReopen, describeExit, TerminalManager } from "../terminal/manager";

const STATUS_TEXT: Record<string, string> = {
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  stopped: "Not connected",
  closed: "Closed",
};

/** The workspace page's terminal tabs. */
export function Terminals({ workspaceId, onStopped }: { workspaceId: string; onStopped: () => void }) {
  const [manager, setManager] = useState<TerminalManager | null>(null);
  useEffect(() => {
    const created = new TerminalManager(workspaceId);
    setManager(created);
    created.start();
    return () => created.dispose();
  }, [workspaceId]);
  return manager ? <TerminalTabs manager={manager} onStopped={onStopped} /> : null;
}

function TerminalTabs({ manager, onStopped }: { manager: TerminalManager; onStopped: () => void }) {
  const snapshot = useSyncExternalStore(manager.subscribe, manager.snapshot);
  const { status, tabs, active, problem } = snapshot;

  // The screen follows its pane's size (the window, a banner above it, a phone turned).
  const panesRef = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const panes = panesRef.current;
    if (!panes) return;
    let frame = 0;
    const observer = new ResizeObserver(() => {
      cancelAnimationFrame(frame);
      frame = requestAnimationFrame(() => manager.fitActive());
    });
    observer.observe(panes);
    return () => {
      cancelAnimationFrame(frame);
      observer.disconnect();
    };
  }, [manager]);

  // A shell that ends may mean the workspace was stopped elsewhere (another tab, the API):
  // the page asks at once rather than at its next poll.
  const ended = tabs.filter((tab) => !tab.live).length;
  useEffect(() => {
    if (status === "stopped" || ended > 0) onStopped();
  }, [status, ended, onStopped]);

  // Arrow keys move along the tab list (WAI-ARIA tabs pattern).
  const onTabKey = (event: KeyboardEvent<HTMLButtonElement>, index: number) => {
    const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
    if (step === 0 || tabs.length === 0) return;
    event.preventDefault();
    const next = tabs[(index + step + tabs.length) % tabs.length];
    manager.select(next.sessionId);
    document.getElementById(`tab-${next.sessionId}`)?.focus();
  };

  return (
    <section className="terminals" aria-label="Terminals">
      <div className="terminal-bar">
        <div role="tablist" aria-label="Terminal tabs" className="tab-list">
          {tabs.map((tab, index) => (
            <div key={tab.sessionId} className={`tab ${tab.sessionId === active ? "tab-active" : ""}`}>
              <button
                type="button"
                role="tab"
                id={`tab-${tab.sessionId}`}
                aria-selected={tab.sessionId === active}
                aria-controls={`pane-${tab.sessionId}`}
                tabIndex={tab.sessionId === active ? 0 : -1}
                className="tab-button"
                onClick={() => manager.select(tab.sessionId)}
                onKeyDown={(event) => onTabKey(event, index)}
                data-testid="terminal-tab"
              >
                <span className={`dot ${tab.live ? "dot-live" : "dot-ended"}`} aria-hidden="true" />
                {tab.name}
                {tab.readOnly && (
                  <span className="tab-read-only" title="A command the agent runs: you can watch it, not type into it" data-testid="read-only-tab">
                    agent · read-only
                  </span>
                )}
                {!tab.live && <span className="visually-hidden"> (ended)</span>}
              </button>
              {!(tab.readOnly && tab.live) && (
                <button
                  type="button"
                  className="tab-close"
                  aria-label={`Close ${tab.name}`}
                  title={`Close ${tab.name}`}
                  onClick={() => manager.closeTab(tab.sessionId)}
                >
                  ×
                </button>
              )}
            </div>
          ))}
        </div>
        <button
          type="button"
          className="button button-small button-quiet"
          onClick={() => manager.newTab()}
          disabled={status !== "open"}
          data-testid="new-terminal"
        >
          + New terminal
        </button>
        {status === "stopped" && (
          <button type="button" className="button button-small" onClick={() => manager.client.reconnect()}>
            Reconnect
          </button>
        )}
        <span className={`connection connection-${status}`} role="status" data-testid="connection-status">
          {STATUS_TEXT[status]}
          {status === "reconnecting" && snapshot.retryInMs !== null && (
            <span className="muted"> (retrying in {Math.ceil(snapshot.retryInMs / 1000)} s)</span>
          )}
        </span>
      </div>
      {problem && (
        <div className="note note-error terminal-problem" role="alert">
          <p>{problem.message}</p>
          <button type="button" className="button button-small button-quiet" onClick={() => manager.dismissProblem()}>
            Dismiss
          </button>
        </div>
      )}
      <div className="terminal-panes" ref={panesRef}>
        {tabs.length === 0 && status === "open" && (
          <div className="terminal-empty">
            <p>No terminals are open.</p>
            <button type="button" className="button" onClick={() => manager.newTab()}>
              Open a terminal
            </button>
          </div>
        )}
        {tabs.length === 0 && status !== "open" && (
          <div className="terminal-empty muted">{STATUS_TEXT[status]}</div>
        )}
        {tabs.map((tab) => (
          <div
            key={tab.sessionId}
            id={`pane-${tab.sessionId}`}
            role="tabpanel"
            aria-labelledby={`tab-${tab.sessionId}`}
            className={`terminal-pane ${tab.sessionId === active ? "terminal-pane-active" : ""}`}
          >
            <div className="terminal-screen" ref={(element) => manager.mount(tab.sessionId, element)} data-session={tab.sessionId} />
            {!tab.live && (
              <div className="terminal-ended" role="status">
                <span>{tab.exit ? describeExit(tab.exit) : "This shell has ended (SAM or the workspace restarted)."}</span>
                {!tab.readOnly && canReopen(tab.exit) && status === "open" ? (
                  <button type="button" className="button button-small" onClick={() => manager.restartTab(tab.sessionId)}>
                    Open a new shell
                  </button>
                ) : (
                  <button type="button" className="button button-small button-quiet" onClick={() => manager.closeTab(tab.sessionId)}>
                    Close tab
                  </button>
                )}
              </div>
            )}
          </div>
        ))}
      </div>
      <p className="muted small terminal-keys" data-testid="terminal-keys">
        <kbd>Esc</kbd> then <kbd>Tab</kbd> leaves the terminal · <kbd>Ctrl</kbd>+<kbd>Shift</kbd>+<kbd>C</kbd> /{" "}
        <kbd>V</kbd> copies and pastes
      </p>
    </section>
  );
}
