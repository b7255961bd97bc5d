import { type ReactNode, Suspense, lazy, useCallback, useEffect, useState } from "react";

import { api } from "../api/client";
import type { Workspace } from "../api/types";
import { BootLogView } from "../components/BootLog";
import { IdleNote } from "../components/IdleNote";
import { mergeBootLog, useLiveBootLog } from "../components/liveBootLog";
import { Terminals } from "../components/Terminals";
import { ConfirmButton, ErrorNote, Loading, PageHeader, providerName, StatusBadge } from "../components/ui";
import { useLoad, useTitle } from "../hooks";
import { Link, navigate } from "../router";

// The Agent tab (markdown, diffs) loads only when it is first opened.
const AgentTab = lazy(() => import("../agent/AgentTab").then((module) => ({ default: module.AgentTab })));
const PROVISIONING = new Set(["pending", "creating"]);
const VIEW_KEY = "sam:workspace-view:";
type View = "terminals" | "agent";
const CHANGING = new Set(["pending", "creating", "stopping"]);
const DEFAULT_POLL_SECONDS = 2;
const IDLE_POLL_MS = 15_000;
const REBUILDABLE = new Set(["running", "stopped", "error"]);

export function WorkspaceScreen({ id }: { id: string }) {
  useEffect(() => {
    performance.mark("sam:workspace-page-load");
  }, []);
  const [pollMs, setPollMs] = useState<number>(DEFAULT_POLL_SECONDS * 1000);
  const workspace = useLoad(() => api.workspace(id), [id], pollMs);
  const status = workspace.data?.status;
  const provisioning = status !== undefined && PROVISIONING.has(status);
  // The boot log is polled while the workspace is being created (docs: boot_log_poll_seconds).
  const bootLog = useLoad(() => api.bootLog(id), [id, status], provisioning ? pollMs : null);
  // Once the agent has it, its own stream shows each step as it happens.
  const live = useLiveBootLog(id, status === "creating" && Boolean(workspace.data?.urls?.boot_log_ws));
  const entries = mergeBootLog(bootLog.data?.entries ?? [], live);
  const [actionError, setActionError] = useState<unknown>(null);
  const [agentWaiting, setAgentWaiting] = useState(0);
  const [acting, setActing] = useState(false);
  useTitle(workspace.data?.name ?? "Workspace");

  useEffect(() => {
    if (!workspace.data) return;
    const seconds = workspace.data.boot_log_poll_seconds ?? DEFAULT_POLL_SECONDS;
    setPollMs(CHANGING.has(workspace.data.status) ? seconds * 1000 : IDLE_POLL_MS);
  }, [workspace.data]);

  const reload = workspace.reload;
  const onTerminalsStopped = useCallback(() => void reload(), [reload]);

  const act = async (action: () => Promise<unknown>) => {
    setActing(true);
    setActionError(null);
    try {
      await action();
    } catch (error) {
      setActionError(error);
    } finally {
      setActing(false);
      await workspace.reload();
    }
  };

  if (!workspace.data) {
    return (
      <>
        <PageHeader title="Workspace" />
        {workspace.state === "error" ? (
          <ErrorNote error={workspace.error} onRetry={() => void workspace.reload()} />
        ) : (
          <Loading what="the workspace" />
        )}
        <p>
          <Link href="/workspaces">All workspaces</Link>
        </p>
      </>
    );
  }

  const data: Workspace = workspace.data;
  // Start of a failed workspace would rebuild it anyway (the API does): one button, Rebuild.
  const canStart = data.status === "stopped";
  const canRebuild = REBUILDABLE.has(data.status);
  const rebuild = () => act(() => api.rebuildWorkspace(id));
  return (
    <div className="workspace-page">
      <PageHeader
        title={data.name}
        actions={
          <>
            {data.status === "running" && (
              <button type="button" className="button" disabled={acting} onClick={() => void act(() => api.stopWorkspace(id))}>
                {acting ? "Stopping…" : "Stop"}
              </button>
            )}
            {canStart && (
              <button
                type="button"
                className="button button-primary"
                disabled={acting}
                onClick={() => void act(() => api.restartWorkspace(id))}
              >
                {acting ? "Starting…" : "Start"}
              </button>
            )}
            {canRebuild && data.status !== "error" && (
              <ConfirmButton label="Rebuild" confirmLabel="Rebuild: fresh clone, changes lost" onConfirm={rebuild} disabled={acting} />
            )}
            <ConfirmButton
              label="Delete"
              confirmLabel="Delete workspace"
              onConfirm={async () => {
                try {
                  await api.deleteWorkspace(id);
                  navigate("/workspaces");
                } catch (error) {
                  setActionError(error);
                }
              }}
            />
          </>
        }
      >
        <p className="muted workspace-meta">
          <StatusBadge status={data.status} /> <span className="mono">{data.repository}</span>
          {data.branch && <> · {data.branch}</>} · {providerName(data.provider)}
          {data.node_id && (
            <>
              {" "}
              · <Link href={`/nodes/${data.node_id}`}>its node</Link>
            </>
          )}
        </p>
      </PageHeader>
      {actionError !== null && <ErrorNote error={actionError} />}
      {workspace.state === "error" && <ErrorNote error={workspace.error} />}

      {provisioning && (
        <section className="card" aria-labelledby="boot-heading">
          <h2 id="boot-heading">
            <span className="spinner" aria-hidden="true" /> Creating the workspace
          </h2>
          <p className="muted small">This page follows the boot log and opens a terminal when the workspace is ready.</p>
          {bootLog.state === "error" && <ErrorNote error={bootLog.error} />}
          <BootLogView entries={entries} dropped={bootLog.data?.dropped} follow />
        </section>
      )}

      {data.status === "running" && (
        <WorkspaceViews
          workspaceId={id}
          agentWaiting={agentWaiting}
          terminals={<Terminals workspaceId={id} onStopped={onTerminalsStopped} />}
          agent={
            <Suspense fallback={<Loading what="the agent" />}>
              <AgentTab workspaceId={id} backend={data.backend} onWaiting={setAgentWaiting} />
            </Suspense>
          }
        />
      )}

      {data.status !== "stopped" && <IdleNote workspace={data} />}

      {data.status === "stopping" && <Loading what="(stopping the workspace)" />}

      {data.status === "stopped" && (
        <section className="card stopped" aria-labelledby="stopped-heading">
          <h2 id="stopped-heading">This workspace is stopped</h2>
          <IdleNote workspace={data} />
          <p>Its files are kept on the node. Start it to open terminals again.</p>
          <button type="button" className="button button-primary" disabled={acting} onClick={() => void act(() => api.restartWorkspace(id))}>
            {acting ? "Starting…" : "Start workspace"}
          </button>
        </section>
      )}

      {data.status === "error" && (
        <section className="card" aria-labelledby="error-heading">
          <h2 id="error-heading">The workspace failed</h2>
          <ErrorNote error={new Error(data.error_message ?? "Provisioning failed; the boot log below says where.")} />
          <p className="muted small">
            Fix the repository (commit the fix), then <strong>Rebuild</strong>: SAM clones it again and reruns its set-up.
          </p>
          <button type="button" className="button button-primary" disabled={acting} onClick={() => void rebuild()}>
            {acting ? "Rebuilding…" : "Rebuild workspace"}
          </button>
          <details className="boot-log-details">
            <summary>Boot log</summary>
            <BootLogView entries={bootLog.data?.entries ?? []} dropped={bootLog.data?.dropped} follow={false} />
          </details>
        </section>
      )}

      {(data.status === "running" || data.status === "stopped") && bootLog.data && bootLog.data.entries.length > 0 && (
        <details className="card boot-log-details">
          <summary>Boot log</summary>
          <BootLogView entries={bootLog.data.entries} dropped={bootLog.data.dropped} follow={false} />
        </details>
      )}
    </div>
  );
}

/** Terminals and the Agent, one shown at a time; each stays mounted (and connected) once
 * opened. The tab shown last comes back after a reload. */
function WorkspaceViews({
  workspaceId,
  agentWaiting,
  terminals,
  agent,
}: {
  workspaceId: string;
  /** Permission requests waiting in the Agent tab: its label says so from the other tab. */
  agentWaiting: number;
  terminals: ReactNode;
  agent: ReactNode;
}) {
  const [view, setView] = useState<View>(() =>
    sessionStorage.getItem(VIEW_KEY + workspaceId) === "agent" ? "agent" : "terminals",
  );
  const [agentOpened, setAgentOpened] = useState(view === "agent");
  const show = (next: View) => {
    sessionStorage.setItem(VIEW_KEY + workspaceId, next);
    setView(next);
    if (next === "agent") setAgentOpened(true);
  };
  const views: { name: View; label: string }[] = [
    { name: "terminals", label: "Terminals" },
    { name: "agent", label: "Agent" },
  ];
  return (
    <>
      <div role="tablist" aria-label="Workspace views" className="view-tabs">
        {views.map(({ name, label }) => (
          <button
            key={name}
            type="button"
            role="tab"
            id={`view-${name}`}
            aria-selected={view === name}
            aria-controls={`view-panel-${name}`}
            className={`view-tab ${view === name ? "view-tab-active" : ""}`}
            tabIndex={view === name ? 0 : -1}
            onClick={() => show(name)}
            onKeyDown={(event) => {
              // Arrow keys move between the two views (WAI-ARIA tabs pattern).
              if (event.key !== "ArrowLeft" && event.key !== "ArrowRight") return;
              event.preventDefault();
              const other = name === "agent" ? "terminals" : "agent";
              show(other);
              document.getElementById(`view-${other}`)?.focus();
            }}
          >
            {label}
            {name === "agent" && agentWaiting > 0 && (
              <span className="view-tab-waiting" data-testid="agent-tab-waiting">
                {" "}
                · {agentWaiting} waiting
              </span>
            )}
          </button>
        ))}
      </div>
      <div role="tabpanel" id="view-panel-terminals" aria-labelledby="view-terminals" className="view-panel" hidden={view !== "terminals"}>
        {terminals}
      </div>
      {agentOpened && (
        <div role="tabpanel" id="view-panel-agent" aria-labelledby="view-agent" className="view-panel" hidden={view !== "agent"}>
          {agent}
        </div>
      )}
    </>
  );
}
