-- Projects (a repository and the defaults its chats start with) and the index of their
-- chats. A chat's messages live in its project's ProjectData Durable Object; the `chats`
-- rows here are a summary for lists across projects, written by that object on a chat's
-- creation, link and status changes, and for its counts only every few messages or seconds
-- (durable_objects/project_data.py). `version` orders those writes: an older one never
-- overwrites a newer.

CREATE TABLE projects (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    repository TEXT NOT NULL,
    default_branch TEXT,
    provider TEXT NOT NULL CHECK (provider IN ('local', 'hetzner')),
    node_size TEXT,
    agent TEXT NOT NULL,
    permission_mode TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX projects_by_user ON projects (user_id, created_at);

CREATE TABLE chats (
    id TEXT NOT NULL,
    project_id TEXT NOT NULL REFERENCES projects (id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    status TEXT NOT NULL,
    workspace_id TEXT,
    agent_session_id TEXT,
    run_id TEXT,
    message_count INTEGER NOT NULL DEFAULT 0,
    last_seq INTEGER NOT NULL DEFAULT 0,
    last_activity_at TEXT NOT NULL,
    created_at TEXT NOT NULL,
    version INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (id)
);
CREATE INDEX chats_by_user ON chats (user_id, last_activity_at);
CREATE INDEX chats_by_project ON chats (project_id);
