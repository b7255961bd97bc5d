-- The owner trusts this workspace's repository devcontainer.json (issue 14): the agent
-- honours every property (host mounts, initializeCommand on the node, privileged, host
-- networking) instead of its allowlist (agent/workspaces/policy.py). Off unless asked.
ALTER TABLE workspaces ADD COLUMN trusted_devcontainer INTEGER NOT NULL DEFAULT 0
    CHECK (trusted_devcontainer IN (0, 1));
