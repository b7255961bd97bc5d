import { useEffect, useState } from "react";

import { api } from "../api/client";
import type { Workspace } from "../api/types";
import { IdleNote } from "../components/IdleNote";
import { Onboarding } from "../components/Onboarding";
import { EmptyState, ErrorNote, Loading, PageHeader, providerName, StatusBadge, When } from "../components/ui";
import { useLoad, useTitle } from "../hooks";
import { Link } from "../router";

const BUSY = new Set(["pending", "creating", "stopping"]);
const POLL_MS = 3000;

export function WorkspacesScreen() {
  useTitle("Workspaces");
  // While any workspace is on its way somewhere, keep its status fresh.
  const [polling, setPolling] = useState(false);
  const workspaces = useLoad(() => api.workspaces(), [], polling ? POLL_MS : null);
  const busy = workspaces.data?.some((w) => BUSY.has(w.status)) ?? false;
  useEffect(() => setPolling(busy), [busy]);
  const credentials = useLoad(() => api.credentials(), []);

  return (
    <>
      <PageHeader
        title="Workspaces"
        actions={
          <Link href="/workspaces/new" className="button button-primary">
            New workspace
          </Link>
        }
      />
      {credentials.data && workspaces.data && (
        <Onboarding
          credentials={credentials.data}
          first={{
            done: workspaces.data.length > 0,
            title: "Create your first workspace",
            detail: "From a repository URL, or a local path on a local node.",
            href: "/workspaces/new",
            action: "New workspace",
          }}
        />
      )}
      {workspaces.state === "loading" && <Loading what="workspaces" />}
      {workspaces.state === "error" && <ErrorNote error={workspaces.error} onRetry={() => void workspaces.reload()} />}
      {workspaces.data && workspaces.data.length === 0 && (
        <EmptyState title="No workspaces yet">
          <p className="muted">A workspace is a dev container with your repository, on a node of yours.</p>
          <Link href="/workspaces/new" className="button">
            Create your first workspace
          </Link>
        </EmptyState>
      )}
      {workspaces.data && workspaces.data.length > 0 && (
        <ul className="rows card" aria-label="Workspaces">
          {workspaces.data.map((workspace) => (
            <WorkspaceRow key={workspace.id} workspace={workspace} />
          ))}
        </ul>
      )}
    </>
  );
}

function WorkspaceRow({ workspace }: { workspace: Workspace }) {
  return (
    <li className="row" data-testid="workspace-row">
      <div className="row-main">
        <Link href={`/workspaces/${workspace.id}`} className="row-title">
          {workspace.name}
        </Link>
        <div className="muted small">
          <span className="mono">{workspace.repository}</span>
          {workspace.branch && <> · {workspace.branch}</>} · {providerName(workspace.provider)} · created{" "}
          <When iso={workspace.created_at} />
        </div>
        {workspace.status === "error" && workspace.error_message && (
          <div className="small error-text">{workspace.error_message}</div>
        )}
        <IdleNote workspace={workspace} compact />
      </div>
      <StatusBadge status={workspace.status} />
    </li>
  );
}
