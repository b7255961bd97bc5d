"""The agent's durable state: workspaces, terminal tabs, model usage and agent sessions
(agent/sessions/records.py: their frames, prompt ids and chat outbox cursor) in one SQLite
file (agent/database.py).

An agent killed with -9 and started again reads its workspaces and tabs back from here.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from agent.database import utc_now
from agent.sessions.records import SESSION_ADDED_COLUMNS, SESSION_SCHEMA, SessionRecords

WORKSPACE_COLUMNS = (
    "id",
    "repository",
    "branch",
    "state",
    "container_id",
    "remote_user",
    "remote_folder",
    "remote_env",
    "directory",
    "error",
    "trusted_devcontainer",
    "created_at",
    "updated_at",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS workspaces (
    id TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    branch TEXT,
    state TEXT NOT NULL,
    container_id TEXT,
    remote_user TEXT,
    remote_folder TEXT,
    remote_env TEXT,
    directory TEXT,
    error TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS terminal_tabs (
    workspace_id TEXT NOT NULL,
    session_id TEXT NOT NULL,
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (workspace_id, session_id)
);
CREATE TABLE IF NOT EXISTS model_usage (
    session_id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_creation_input_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_input_tokens INTEGER NOT NULL DEFAULT 0,
    updated_at TEXT NOT NULL
);
"""
# Token counts the model proxy adds per agent session (agent/channel/usage.py); the rows
# outlive the session and its workspace, for the cost ledger to read.
USAGE_COUNTS = (
    "requests",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
)
# Columns added since the first release, for state directories an older agent created.
_ADDED_COLUMNS = {
    "workspaces": {"remote_env": "TEXT", "trusted_devcontainer": "INTEGER"},
    **SESSION_ADDED_COLUMNS,
}
_JSON_COLUMNS = frozenset({"remote_env"})  # stored as JSON text, read back as values


class Store(SessionRecords):
    """Workspaces, terminal tabs and agent sessions, persisted in SQLite at `path`.

    Calls are short synchronous statements, safe from any thread (one lock, one
    connection); the agent calls them from its event loop.
    """

    def __init__(self, path: str | Path) -> None:
        super().__init__(path, _SCHEMA + SESSION_SCHEMA, _ADDED_COLUMNS)

    # --- workspaces -------------------------------------------------------------------------

    def save_workspace(self, record: dict[str, Any]) -> dict[str, Any]:
        """Insert or update a workspace; unknown keys are ignored. Returns the stored row."""
        assert record.get("id"), "a workspace record needs an id"
        now = utc_now()
        with self._lock:
            existing = self._row("SELECT * FROM workspaces WHERE id = ?", (record["id"],))
            merged: dict[str, Any] = _workspace(existing) if existing else {"created_at": now}
            merged.update({k: v for k, v in record.items() if k in WORKSPACE_COLUMNS})
            merged["updated_at"] = now
            values = [_stored(column, merged.get(column)) for column in WORKSPACE_COLUMNS]
            placeholders = ", ".join("?" for _ in WORKSPACE_COLUMNS)
            self._db.execute(
                f"INSERT OR REPLACE INTO workspaces ({', '.join(WORKSPACE_COLUMNS)}) "
                f"VALUES ({placeholders})",
                values,
            )
            return {column: merged.get(column) for column in WORKSPACE_COLUMNS}

    def workspace(self, workspace_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._row("SELECT * FROM workspaces WHERE id = ?", (workspace_id,))
        return _workspace(row) if row else None

    def repository_of(self, workspace_id: str) -> str | None:
        """The workspace's repository URL or path; None for a workspace not on this node."""
        record = self.workspace(workspace_id)
        return record["repository"] if record else None

    def workspaces(self) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM workspaces ORDER BY created_at, id").fetchall()
        return [_workspace(row) for row in rows]

    def delete_workspace(self, workspace_id: str) -> None:
        """Forget a workspace and its tabs."""
        with self._transaction():
            self._db.execute("DELETE FROM terminal_tabs WHERE workspace_id = ?", (workspace_id,))
            self._db.execute(
                "DELETE FROM agent_session_frames WHERE session_id IN "
                "(SELECT id FROM agent_sessions WHERE workspace_id = ?)",
                (workspace_id,),
            )
            self._db.execute(
                "DELETE FROM agent_session_prompts WHERE session_id IN "
                "(SELECT id FROM agent_sessions WHERE workspace_id = ?)",
                (workspace_id,),
            )
            self._db.execute("DELETE FROM agent_sessions WHERE workspace_id = ?", (workspace_id,))
            self._db.execute("DELETE FROM workspaces WHERE id = ?", (workspace_id,))

    # --- terminal tabs ----------------------------------------------------------------------

    def add_tab(self, workspace_id: str, session_id: str, name: str) -> dict[str, Any]:
        """Append a tab after the workspace's last one. Adding an existing tab renames it."""
        with self._transaction():
            existing = self._row(
                "SELECT * FROM terminal_tabs WHERE workspace_id = ? AND session_id = ?",
                (workspace_id, session_id),
            )
            if existing:
                self._db.execute(
                    "UPDATE terminal_tabs SET name = ? WHERE workspace_id = ? AND session_id = ?",
                    (name, workspace_id, session_id),
                )
            else:
                (last,) = self._db.execute(
                    "SELECT COALESCE(MAX(position), -1) FROM terminal_tabs WHERE workspace_id = ?",
                    (workspace_id,),
                ).fetchone()
                self._db.execute(
                    "INSERT INTO terminal_tabs "
                    "(workspace_id, session_id, name, position, created_at) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (workspace_id, session_id, name, last + 1, utc_now()),
                )
            row = self._row(
                "SELECT * FROM terminal_tabs WHERE workspace_id = ? AND session_id = ?",
                (workspace_id, session_id),
            )
        assert row is not None
        return dict(row)

    def rename_tab(self, workspace_id: str, session_id: str, name: str) -> bool:
        """Rename a tab; False when there is no such tab."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE terminal_tabs SET name = ? WHERE workspace_id = ? AND session_id = ?",
                (name, workspace_id, session_id),
            )
        return cursor.rowcount > 0

    def remove_tab(self, workspace_id: str, session_id: str) -> bool:
        """Remove a tab; False when there was no such tab. Positions of the others keep
        their order (gaps are fine: tabs() sorts by position)."""
        with self._lock:
            cursor = self._db.execute(
                "DELETE FROM terminal_tabs WHERE workspace_id = ? AND session_id = ?",
                (workspace_id, session_id),
            )
        return cursor.rowcount > 0

    def tabs(self, workspace_id: str) -> list[dict[str, Any]]:
        """The workspace's tabs in order: {workspace_id, session_id, name, position, created_at}."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM terminal_tabs WHERE workspace_id = ? ORDER BY position",
                (workspace_id,),
            ).fetchall()
        return [dict(row) for row in rows]

    # --- model usage ----------------------------------------------------------------------

    def add_model_usage(self, session_id: str, workspace_id: str, counts: dict[str, int]) -> None:
        """Add `counts` (keys of USAGE_COUNTS) to the session's totals."""
        assert set(counts) <= set(USAGE_COUNTS), counts
        values = [counts.get(name, 0) for name in USAGE_COUNTS]
        additions = ", ".join(f"{name} = {name} + excluded.{name}" for name in USAGE_COUNTS)
        with self._lock:
            self._db.execute(
                f"INSERT INTO model_usage (session_id, workspace_id, {', '.join(USAGE_COUNTS)}, "
                f"updated_at) VALUES (?, ?, {', '.join('?' for _ in USAGE_COUNTS)}, ?) "
                f"ON CONFLICT (session_id) DO UPDATE SET {additions}, "
                "updated_at = excluded.updated_at",
                (session_id, workspace_id, *values, utc_now()),
            )

    def model_usage(self, session_id: str) -> dict[str, int] | None:
        """The session's totals (USAGE_COUNTS), or None before its first model request."""
        with self._lock:
            row = self._row("SELECT * FROM model_usage WHERE session_id = ?", (session_id,))
        return {name: row[name] for name in USAGE_COUNTS} if row else None


def _stored(column: str, value: Any) -> Any:
    return json.dumps(value) if column in _JSON_COLUMNS and value is not None else value


def _workspace(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    for column in _JSON_COLUMNS:
        if record.get(column) is not None:
            record[column] = json.loads(record[column])
    return record
