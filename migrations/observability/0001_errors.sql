-- Errors reported by the API, node agents and browsers, for the admin view.
CREATE TABLE errors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    source TEXT NOT NULL CHECK (source IN ('api', 'agent', 'browser')),
    level TEXT NOT NULL DEFAULT 'error',
    message TEXT NOT NULL,
    detail TEXT,
    request_id TEXT,
    user_id TEXT,
    node_id TEXT,
    workspace_id TEXT,
    occurred_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);
CREATE INDEX errors_by_time ON errors (occurred_at);
