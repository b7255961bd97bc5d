import { useState } from "react";

import { api } from "../api/client";
import type { Node } from "../api/types";
import { ConfirmButton, ErrorNote, Loading, PageHeader, providerName, StatusBadge, When } from "../components/ui";
import { useLoad, useTitle } from "../hooks";
import { Link, navigate } from "../router";

const POLL_MS = 5000;

export function NodeScreen({ id }: { id: string }) {
  const node = useLoad(() => api.node(id), [id], POLL_MS);
  const workspaces = useLoad(() => api.workspaces(), [id]);
  const [error, setError] = useState<unknown>(null);
  useTitle(node.data?.name ?? "Node");

  if (!node.data) {
    return (
      <>
        <PageHeader title="Node" />
        {node.state === "error" ? (
          <ErrorNote error={node.error} onRetry={() => void node.reload()} />
        ) : (
          <Loading what="the node" />
        )}
        <p>
          <Link href="/nodes">All nodes</Link>
        </p>
      </>
    );
  }
  const data: Node = node.data;
  const mine = (workspaces.data ?? []).filter((w) => w.node_id === data.id);
  return (
    <>
      <PageHeader
        title={data.name}
        actions={
          <ConfirmButton
            label="Delete node"
            confirmLabel="Delete this node"
            disabled={data.workspace_count > 0}
            onConfirm={async () => {
              try {
                await api.deleteNode(data.id);
                navigate("/nodes");
              } catch (failure) {
                setError(failure);
              }
            }}
          />
        }
      >
        <p className="muted">
          <Link href="/nodes">Nodes</Link> / <span className="mono">{data.id}</span>
        </p>
      </PageHeader>
      {error !== null && <ErrorNote error={error} />}
      {node.state === "error" && <ErrorNote error={node.error} />}
      <section className="card">
        <dl className="facts">
          <dt>State</dt>
          <dd>
            <StatusBadge status={data.status} />
            {data.warm && <span className="muted"> warm since <When iso={data.warm_since} /></span>}
          </dd>
          <dt>Health</dt>
          <dd>{data.health ? <StatusBadge status={data.health} /> : <span className="muted">no heartbeat yet</span>}</dd>
          <dt>Last heartbeat</dt>
          <dd>
            <When iso={data.last_heartbeat_at} />
          </dd>
          <dt>Provider</dt>
          <dd>
            {providerName(data.provider)}
            {data.size && ` · ${data.size}`}
            {data.location && ` · ${data.location}`}
          </dd>
          {data.ip_address && (
            <>
              <dt>IP address</dt>
              <dd className="mono">{data.ip_address}</dd>
            </>
          )}
          <dt>Agent</dt>
          <dd>{data.agent_version ?? <span className="muted">not reported yet</span>}</dd>
          {data.metrics?.cpu_percent !== undefined && (
            <>
              <dt>CPU</dt>
              <dd>{data.metrics.cpu_percent.toFixed(0)} %</dd>
            </>
          )}
          {data.metrics?.memory && (
            <>
              <dt>Memory</dt>
              <dd>{usage(data.metrics.memory)}</dd>
            </>
          )}
          {data.metrics?.disk && (
            <>
              <dt>Disk</dt>
              <dd>{usage(data.metrics.disk)}</dd>
            </>
          )}
          <dt>Created</dt>
          <dd>
            <When iso={data.created_at} />
          </dd>
        </dl>
        {data.error_message && <ErrorNote error={new Error(data.error_message)} />}
        {data.workspace_count > 0 && (
          <p className="hint">A node that holds workspaces cannot be deleted: delete its workspaces first.</p>
        )}
      </section>
      <section className="card" aria-labelledby="node-workspaces">
        <h2 id="node-workspaces">Workspaces on this node</h2>
        {workspaces.state === "error" && <ErrorNote error={workspaces.error} />}
        {workspaces.data && mine.length === 0 && <p className="muted">None.</p>}
        {mine.length > 0 && (
          <ul className="rows">
            {mine.map((w) => (
              <li key={w.id} className="row">
                <div className="row-main">
                  <Link href={`/workspaces/${w.id}`} className="row-title">
                    {w.name}
                  </Link>
                  <div className="muted small mono">{w.repository}</div>
                </div>
                <StatusBadge status={w.status} />
              </li>
            ))}
          </ul>
        )}
      </section>
    </>
  );
}

function usage({ total, used }: { total: number; used: number }): string {
  const gib = (bytes: number) => (bytes / 2 ** 30).toFixed(1);
  return `${gib(used)} of ${gib(total)} GiB`;
}
