import { useEffect, useState } from "react";

import { api } from "../api/client";
import type { Credential, Workspace } from "../api/types";
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
        <Onboarding credentials={credentials.data} workspaces={workspaces.data} />
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
      </div>
      <StatusBadge status={workspace.status} />
    </li>
  );
}

/** First steps, until all are done: a cloud credential, an agent key, a first workspace. */
function Onboarding({ credentials, workspaces }: { credentials: Credential[]; workspaces: Workspace[] }) {
  const steps = [
    {
      done: credentials.some((c) => c.kind === "hetzner"),
      title: "Connect your Hetzner Cloud account",
      detail: "Not needed for local nodes under sam dev.",
      href: "/settings?kind=hetzner",
      action: "Add a Hetzner token",
    },
    {
      done: credentials.some((c) => c.kind === "anthropic" || c.kind === "openai"),
      title: "Add an API key for the coding agent",
      detail: "Anthropic for Claude Code, or OpenAI.",
      href: "/settings?kind=anthropic",
      action: "Add an agent key",
    },
    {
      done: workspaces.length > 0,
      title: "Create your first workspace",
      detail: "From a repository URL, or a local path on a local node.",
      href: "/workspaces/new",
      action: "New workspace",
    },
  ];
  if (steps.every((step) => step.done)) return null;
  return (
    <section className="card onboarding" aria-labelledby="onboarding-heading">
      <h2 id="onboarding-heading">Get started</h2>
      <ol className="checklist">
        {steps.map((step) => (
          <li key={step.title} className={step.done ? "done" : ""}>
            <span className="check" aria-hidden="true">
              {step.done ? "✓" : ""}
            </span>
            <div>
              <strong>{step.title}</strong>
              <span className="visually-hidden">{step.done ? " (done)" : " (to do)"}</span>
              <div className="muted small">{step.detail}</div>
            </div>
            {!step.done && (
              <Link href={step.href} className="button button-small">
                {step.action}
              </Link>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}
