-- What the workspaces service (worker/workspaces.py) keeps beyond 0001's workspaces table.

-- Which provider a new node for this workspace comes from, and its size.
ALTER TABLE workspaces ADD COLUMN provider TEXT NOT NULL DEFAULT 'local'
    CHECK (provider IN ('local', 'hetzner'));
ALTER TABLE workspaces ADD COLUMN size TEXT;
-- When the workspace last started provisioning (create, restart): cron times it out from
-- here, and when the agent last accepted it (POST /workspaces or a restart).
ALTER TABLE workspaces ADD COLUMN provisioning_since TEXT;
ALTER TABLE workspaces ADD COLUMN dispatched_at TEXT;
-- What the agent's ready callback reported.
ALTER TABLE workspaces ADD COLUMN ready_at TEXT;
ALTER TABLE workspaces ADD COLUMN container_id TEXT;
ALTER TABLE workspaces ADD COLUMN remote_user TEXT;
ALTER TABLE workspaces ADD COLUMN remote_folder TEXT;
ALTER TABLE workspaces ADD COLUMN backend TEXT;

CREATE INDEX workspaces_by_status ON workspaces (status);
