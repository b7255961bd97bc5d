import { useEffect, useState } from "react";

import { api } from "../api/client";
import type { Node } from "../api/types";
import { EmptyState, ErrorNote, Loading, PageHeader, providerName, StatusBadge, When } from "../components/ui";
import { useLoad, useTitle } from "../hooks";
import { Link } from "../router";

const BUSY = new Set(["pending", "creating", "stopping"]);
const POLL_MS = 5000;

export function NodesScreen() {
  useTitle("Nodes");
  const [polling, setPolling] = useState(false);
  const nodes = useLoad(() => api.nodes(), [], polling ? POLL_MS : null);
  const busy = nodes.data?.some((n) => BUSY.has(n.status)) ?? false;
  useEffect(() => setPolling(busy), [busy]);
  return (
    <>
      <PageHeader title="Nodes">
        <p className="muted">
          Machines that run your workspaces. SAM creates them when a workspace needs one, keeps an idle node warm for a
          while for instant reuse, then removes it.
        </p>
      </PageHeader>
      {nodes.state === "loading" && <Loading what="nodes" />}
      {nodes.state === "error" && <ErrorNote error={nodes.error} onRetry={() => void nodes.reload()} />}
      {nodes.data && nodes.data.length === 0 && (
        <EmptyState title="No nodes">
          <p className="muted">
            A node is created for you when you <Link href="/workspaces/new">create a workspace</Link>.
          </p>
        </EmptyState>
      )}
      {nodes.data && nodes.data.length > 0 && (
        <ul className="rows card" aria-label="Nodes">
          {nodes.data.map((node) => (
            <NodeRow key={node.id} node={node} />
          ))}
        </ul>
      )}
    </>
  );
}

function NodeRow({ node }: { node: Node }) {
  return (
    <li className="row" data-testid="node-row">
      <div className="row-main">
        <Link href={`/nodes/${node.id}`} className="row-title">
          {node.name}
        </Link>
        <div className="muted small">
          {providerName(node.provider)}
          {node.size && <> · {node.size}</>}
          {node.location && <> · {node.location}</>} · {node.workspace_count}{" "}
          {node.workspace_count === 1 ? "workspace" : "workspaces"}
          {node.warm && <> · warm</>} · last heartbeat <When iso={node.last_heartbeat_at} />
        </div>
      </div>
      <span className="badges">
        {node.health && node.status === "running" && <StatusBadge status={node.health} />}
        <StatusBadge status={node.status} />
      </span>
    </li>
  );
}
