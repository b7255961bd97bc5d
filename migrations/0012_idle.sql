-- Idle workspaces (issue 12 item 5, worker/workspaces/idle.py): what their node's agent
-- last said of their use, why SAM stopped one, and work it saved or could not save.

-- When the workspace was last used (terminal input, agent activity, a viewer), as the
-- control plane's clock puts it from the heartbeat's idle_seconds.
ALTER TABLE workspaces ADD COLUMN last_active_at TEXT;
-- At the last heartbeat an agent session was prompting or someone was watching: in use
-- whatever the time says.
ALTER TABLE workspaces ADD COLUMN in_use INTEGER NOT NULL DEFAULT 0 CHECK (in_use IN (0, 1));
-- Why SAM stopped it (the text the app shows), None when its owner did.
ALTER TABLE workspaces ADD COLUMN stopped_reason TEXT;
-- The sam/wip/... branch that holds the work SAM pushed before stopping it.
ALTER TABLE workspaces ADD COLUMN wip_branch TEXT;
-- Why SAM left it running with unsaved work for its owner to decide (None: nothing to
-- decide). Its node is never torn down automatically while this is set.
ALTER TABLE workspaces ADD COLUMN needs_attention TEXT;
