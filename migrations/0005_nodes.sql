-- What the node service (worker/nodes.py) keeps beyond 0001's nodes table.

-- How the control plane reaches the node's agent: `vm-{id}.{domain}` (Hetzner, through a
-- DNS-only A record) or 127.0.0.1 (local), and the port its ready callback reported.
ALTER TABLE nodes ADD COLUMN agent_host TEXT;
ALTER TABLE nodes ADD COLUMN agent_port INTEGER CHECK (agent_port BETWEEN 1 AND 65535);
ALTER TABLE nodes ADD COLUMN agent_version TEXT;
ALTER TABLE nodes ADD COLUMN ready_at TEXT;
-- The Cloudflare DNS record of a Hetzner node, deleted with it.
ALTER TABLE nodes ADD COLUMN dns_record_id TEXT;
-- The last heartbeat's load figures, as JSON: {"cpu_percent", "memory", "disk",
-- "active_workspaces"} (bytes).
ALTER TABLE nodes ADD COLUMN metrics TEXT;

-- A mirror of the node's NodeLifecycle Durable Object (which is the truth): when it went
-- warm (NULL while it holds workspaces) and how many workspaces it holds. `lifecycle_seq`
-- orders the object's writes, so a late write never overwrites a newer one.
ALTER TABLE nodes ADD COLUMN warm_since TEXT;
ALTER TABLE nodes ADD COLUMN workspace_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE nodes ADD COLUMN lifecycle_seq INTEGER NOT NULL DEFAULT 0;

CREATE INDEX nodes_by_warm_since ON nodes (warm_since) WHERE warm_since IS NOT NULL;
