/**
 * The workspace page's Agent tab: talk to Claude Code running in the workspace's container
 * (docs/protocols/agent-sessions.md). It says plainly when it cannot: no agent credential
 * (with the way to Settings), or a workspace without a container.
 */

import { type FormEvent, useEffect, useState, useSyncExternalStore } from "react";

import { api } from "../api/client";
import { Loading, StatusBadge } from "../components/ui";
import { useLoad } from "../hooks";
import { Link } from "../router";
import { ConversationView } from "./ConversationView";
import { openRequests } from "./conversation";
import { PermissionModes } from "./PermissionModes";
import { MAX_PROMPT_CHARS, type PermissionMode } from "./protocol";
import { AgentSessions, type ViewerStatus, sessionState } from "./sessions";

const VIEWER_TEXT: Record<ViewerStatus, string> = {
  none: "",
  connecting: "Connecting…",
  open: "Connected",
  reconnecting: "Reconnecting…",
  closed: "Ended",
};

/** Agent sessions need a container; on the host backend there is none. */
const NEEDS_CONTAINER = "agent_needs_container";
/** The node found no Anthropic key for the owner (deleted since the tab checked). */
const NO_CREDENTIAL = "agent_credential_missing";

export function AgentTab({
  workspaceId,
  backend,
  onWaiting,
}: {
  workspaceId: string;
  backend: string | null;
  /** How many permission requests wait for an answer (for the tab's label). */
  onWaiting?: (count: number) => void;
}) {
  const credentials = useLoad(() => api.credentials(), []);
  if (backend === "host") return <NeedsContainer />;
  if (credentials.state === "loading" && !credentials.data) return <Loading what="your agent credential" />;
  if (credentials.data && !credentials.data.some((c) => c.kind === "anthropic")) return <NoCredential />;
  return <Sessions workspaceId={workspaceId} onWaiting={onWaiting} />;
}

function NeedsContainer() {
  return (
    <section className="agent-blocked card" data-testid="agent-needs-container">
      <h2>The agent needs a container</h2>
      <p>
        This workspace runs directly on its node (the host backend), so there is no container to run an agent in
        safely. Create the workspace on a node with Docker to use the agent; its terminals work as they are.
      </p>
    </section>
  );
}

function NoCredential() {
  return (
    <section className="agent-blocked card" data-testid="agent-no-credential">
      <h2>Add an agent credential first</h2>
      <p>
        The agent talks to Anthropic's models with your own key (an API key or a Claude Code OAuth token). SAM keeps it
        outside the workspace and never shows it to the code the agent runs.
      </p>
      <Link href="/settings#agent" className="button button-primary">
        Open Settings → Agent
      </Link>
    </section>
  );
}

function Sessions({ workspaceId, onWaiting }: { workspaceId: string; onWaiting?: (count: number) => void }) {
  const [store, setStore] = useState<AgentSessions | null>(null);
  useEffect(() => {
    const created = new AgentSessions(workspaceId);
    setStore(created);
    register(created);
    void created.start();
    return () => {
      unregister(created);
      created.dispose();
    };
  }, [workspaceId]);
  return store ? <SessionView store={store} onWaiting={onWaiting} /> : null;
}

function SessionView({ store, onWaiting }: { store: AgentSessions; onWaiting?: (count: number) => void }) {
  const snapshot = useSyncExternalStore(store.subscribe, store.snapshot);
  const { sessions, sessionId, conversation, viewer, creating, problem, answered } = snapshot;
  const [mode, setMode] = useState<PermissionMode>("ask");
  const [text, setText] = useState("");
  const [sending, setSending] = useState(false);
  const waiting = openRequests(conversation).length;
  useEffect(() => onWaiting?.(waiting), [onWaiting, waiting]);

  if (problem?.code === NEEDS_CONTAINER) return <NeedsContainer />;
  if (problem?.code === NO_CREDENTIAL) return <NoCredential />;
  const state = sessionState(snapshot);
  const usage = sessions?.find((s) => s.id === sessionId)?.model_usage;
  // Running, or coming back from a crash (then it takes no prompt until it has resumed).
  const live = state === "idle" || state === "prompting" || state === "starting" || state === "restarting";

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (sending || creating) return;
    setSending(true);
    try {
      if (live) {
        if (await store.prompt(text)) setText("");
      } else {
        await store.create(mode, text);
        setText("");
      }
    } finally {
      setSending(false);
    }
  };

  return (
    <section className="agent" aria-label="Agent">
      <div className="agent-bar">
        {sessions && sessions.length > 1 && (
          <label className="agent-picker">
            <span className="visually-hidden">Session</span>
            <select value={sessionId ?? ""} onChange={(event) => store.select(event.target.value)}>
              {sessions.map((s) => (
                <option key={s.id} value={s.id}>
                  {new Date(s.created_at).toLocaleString()} · {s.state}
                </option>
              ))}
            </select>
          </label>
        )}
        {state && <StatusBadge status={state} />}
        {usage && (
          <span className="muted small" title="Counted by the node's model proxy when the list was last read">
            {usage.input_tokens.toLocaleString()} in / {usage.output_tokens.toLocaleString()} out tokens
          </span>
        )}
        {conversation.agent?.name && (
          <span className="muted small">
            {conversation.agent.name} {conversation.agent.version}
          </span>
        )}
        {waiting > 0 && (
          <span className="badge badge-warn" data-testid="agent-waiting">
            {waiting === 1 ? "1 question waits for you" : `${waiting} questions wait for you`}
          </span>
        )}
        <span className="agent-spacer" />
        {viewer !== "none" && (
          <span className={`connection connection-${viewer}`} role="status" data-testid="agent-connection">
            {VIEWER_TEXT[viewer]}
          </span>
        )}
        {state === "prompting" && (
          <button type="button" className="button button-small" onClick={() => void store.cancel()}>
            Cancel turn
          </button>
        )}
        {live && (
          <button type="button" className="button button-small button-quiet" onClick={() => void store.stop()}>
            Stop session
          </button>
        )}
      </div>
      {problem && (
        <div className="note note-error" role="alert">
          <p>{problem.message}</p>
          <button type="button" className="button button-small button-quiet" onClick={() => store.dismissProblem()}>
            Dismiss
          </button>
        </div>
      )}
      {sessions === null && !problem && <Loading what="the agent sessions" />}
      {sessions === null && problem && (
        <button type="button" className="button button-small" onClick={() => void store.start()}>
          Try again
        </button>
      )}
      {sessionId && (
        <ConversationView conversation={conversation} answered={answered} onAnswer={store.answer} />
      )}
      {creating && (
        <p className="loading" role="status">
          <span className="spinner" aria-hidden="true" /> Starting Claude Code in the workspace…
        </p>
      )}
      {sessions !== null && (
        <form className="agent-prompt" onSubmit={(event) => void submit(event)}>
          {!live && (
            <PermissionModes
              legend={`${sessionId ? "Start a new session" : "Start the agent"} — permissions`}
              mode={mode}
              onChange={setMode}
            />
          )}
          <label className="visually-hidden" htmlFor="agent-prompt-text">
            Prompt
          </label>
          <textarea
            id="agent-prompt-text"
            data-testid="agent-prompt"
            rows={3}
            maxLength={MAX_PROMPT_CHARS}
            placeholder={live ? "Ask the agent…" : "What should the agent do? (optional: you can start it first)"}
            value={text}
            onChange={(event) => setText(event.target.value)}
            onKeyDown={(event) => {
              if (event.key === "Enter" && (event.metaKey || event.ctrlKey)) event.currentTarget.form?.requestSubmit();
            }}
          />
          <button
            type="submit"
            className="button button-primary"
            disabled={sending || creating || state === "prompting" || state === "restarting" || (live && !text.trim())}
          >
            {live ? "Send" : "Start session"}
          </button>
        </form>
      )}
    </section>
  );
}

// The browser tests reach the live stores here (to drop a viewer as a network failure would).
type Registry = { __samAgentSessions?: Set<AgentSessions> };

function register(store: AgentSessions): void {
  ((globalThis as Registry).__samAgentSessions ??= new Set()).add(store);
}

function unregister(store: AgentSessions): void {
  (globalThis as Registry).__samAgentSessions?.delete(store);
}
