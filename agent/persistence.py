"""The agent's durable state: workspaces, terminal tabs and agent sessions (with their
sequenced frames, their prompt ids and their chat outbox's cursor) in one SQLite file (WAL).

An agent killed with -9 and started again reads its workspaces and tabs back from here.
Every write is one committed transaction, so a crash never leaves half a record.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_SECONDS = 5.0
# The agent's state (its database, its tokens) is readable by the agent's user only.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600

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
CREATE TABLE IF NOT EXISTS agent_sessions (
    id TEXT PRIMARY KEY,
    workspace_id TEXT NOT NULL,
    agent TEXT NOT NULL,
    permission_mode TEXT NOT NULL,
    state TEXT NOT NULL,
    acp_session_id TEXT,
    last_seq INTEGER NOT NULL DEFAULT 0,
    first_seq INTEGER NOT NULL DEFAULT 1,
    log_bytes INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS agent_session_frames (
    session_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
CREATE TABLE IF NOT EXISTS agent_session_prompts (
    session_id TEXT NOT NULL,
    prompt_id TEXT NOT NULL,
    text TEXT,
    queued INTEGER NOT NULL,
    position INTEGER NOT NULL,
    PRIMARY KEY (session_id, prompt_id)
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
AGENT_SESSION_COLUMNS = (
    "id",
    "workspace_id",
    "agent",
    "permission_mode",
    "state",
    "acp_session_id",
    "last_seq",
    "first_seq",
    "created_at",
    "delivered_seq",
    "outbox_stopped",
)

# Columns added since the first release, for state directories an older agent created.
_ADDED_COLUMNS = {
    "workspaces": {"remote_env": "TEXT", "trusted_devcontainer": "INTEGER"},
    "agent_sessions": {
        "chat": "TEXT",  # the ChatLink's JSON: the session's frames go to that project chat
        "delivered_seq": "INTEGER NOT NULL DEFAULT 0",  # the chat outbox's cursor
        "outbox_stopped": "TEXT",  # why the control plane refused its frames for good
    },
    "agent_session_frames": {"created_at": "TEXT"},
}
_JSON_COLUMNS = frozenset({"remote_env"})  # stored as JSON text, read back as values
# A chat-linked session's log keeps frames its outbox has not delivered beyond the log's
# byte cap, up to this many bytes in all (the control plane down for hours, a busy agent).
MAX_UNDELIVERED_LOG_BYTES = 64 * 1024 * 1024


def utc_now() -> str:
    """The current time as ISO-8601 UTC with a trailing Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Store:
    """Workspaces, terminal tabs and agent sessions, persisted in SQLite at `path`.

    Calls are short synchronous statements, safe from any thread (one lock, one
    connection); the agent calls them from its event loop.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        # Owner only, before sqlite3 makes it 0644; its -wal and -shm files take this mode.
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE_MODE))
        self.path.chmod(PRIVATE_FILE_MODE)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # autocommit; transactions are explicit below
            check_same_thread=False,
        )
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            for table, columns in _ADDED_COLUMNS.items():
                info = self._db.execute(f"PRAGMA table_info({table})")
                present = {row["name"] for row in info}
                for column, kind in columns.items():
                    if column not in present:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

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

    # --- agent sessions and their frames ----------------------------------------------------

    def add_agent_session(
        self,
        session_id: str,
        workspace_id: str,
        agent: str,
        permission_mode: str,
        state: str,
        chat: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """A new session; `chat` (a ChatLink's fields) sends its frames to a project chat."""
        now = utc_now()
        link = json.dumps(chat, sort_keys=True) if chat is not None else None
        with self._lock:
            self._db.execute(
                "INSERT INTO agent_sessions (id, workspace_id, agent, permission_mode, state, "
                "chat, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, workspace_id, agent, permission_mode, state, link, now, now),
            )
        record = self.agent_session(session_id)
        assert record is not None
        return record

    def update_agent_session(self, session_id: str, **fields: str | None) -> None:
        """Set `state` and/or `acp_session_id`."""
        assert fields and set(fields) <= {"state", "acp_session_id"}, fields
        assignments = ", ".join(f"{name} = ?" for name in fields)
        with self._lock:
            self._db.execute(
                f"UPDATE agent_sessions SET {assignments}, updated_at = ? WHERE id = ?",
                (*fields.values(), utc_now(), session_id),
            )

    def agent_session(self, session_id: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._row("SELECT * FROM agent_sessions WHERE id = ?", (session_id,))
        return _agent_session(row) if row else None

    def agent_sessions(self, workspace_id: str) -> list[dict[str, Any]]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM agent_sessions WHERE workspace_id = ? ORDER BY created_at, id",
                (workspace_id,),
            ).fetchall()
        return [_agent_session(row) for row in rows]

    def append_frame(
        self, session_id: str, body: Callable[[int], str], max_bytes: int
    ) -> tuple[int, str]:
        """Store the session's next frame, `body(seq)`: (seq, body). The oldest frames
        go while the session's log is over `max_bytes` (the newest always stays), except
        those a chat-linked session's outbox has yet to deliver (up to
        MAX_UNDELIVERED_LOG_BYTES)."""
        with self._transaction():
            (last, total, delivered) = self._db.execute(
                "SELECT last_seq, log_bytes, CASE WHEN chat IS NULL OR outbox_stopped IS NOT "
                "NULL THEN NULL ELSE delivered_seq END FROM agent_sessions WHERE id = ?",
                (session_id,),
            ).fetchone()
            seq = last + 1
            text = body(seq)
            size = len(text.encode())
            self._db.execute(
                "INSERT INTO agent_session_frames (session_id, seq, body, created_at) "
                "VALUES (?, ?, ?, ?)",
                (session_id, seq, text, utc_now()),
            )
            total += size
            first = None
            while total > max_bytes:
                (oldest, oldest_size) = self._db.execute(
                    "SELECT seq, length(CAST(body AS BLOB)) FROM agent_session_frames "
                    "WHERE session_id = ? ORDER BY seq LIMIT 1",
                    (session_id,),
                ).fetchone()
                undelivered = delivered is not None and oldest > delivered
                if oldest == seq or (undelivered and total <= MAX_UNDELIVERED_LOG_BYTES):
                    break
                self._db.execute(
                    "DELETE FROM agent_session_frames WHERE session_id = ? AND seq = ?",
                    (session_id, oldest),
                )
                total -= oldest_size
                first = oldest + 1
            self._db.execute(
                "UPDATE agent_sessions SET last_seq = ?, log_bytes = ?, "
                "first_seq = COALESCE(?, first_seq) WHERE id = ?",
                (seq, total, first, session_id),
            )
        return seq, text

    def frames_after(self, session_id: str, after: int, limit: int) -> list[tuple[int, str]]:
        """Up to `limit` stored frames with seq > `after`, oldest first: (seq, body)."""
        return [(seq, body) for seq, body, _ in self.dated_frames_after(session_id, after, limit)]

    def dated_frames_after(
        self, session_id: str, after: int, limit: int
    ) -> list[tuple[int, str, str | None]]:
        """As frames_after, with the time each was stored (None: by an older agent)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, body, created_at FROM agent_session_frames "
                "WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (session_id, after, limit),
            ).fetchall()
        return [(row["seq"], row["body"], row["created_at"]) for row in rows]

    # --- the chat outbox's cursor ------------------------------------------------------------

    def mark_delivered(self, session_id: str, seq: int) -> None:
        """The control plane has the session's frames up to `seq`."""
        with self._lock:
            self._db.execute(
                "UPDATE agent_sessions SET delivered_seq = MAX(delivered_seq, ?) WHERE id = ?",
                (seq, session_id),
            )

    def stop_outbox(self, session_id: str, reason: str) -> None:
        """The control plane refused the session's frames for good: send no more."""
        with self._lock:
            self._db.execute(
                "UPDATE agent_sessions SET outbox_stopped = ? WHERE id = ?", (reason, session_id)
            )

    def undelivered_sessions(self) -> list[dict[str, Any]]:
        """Chat-linked sessions with frames their outbox has yet to deliver."""
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM agent_sessions WHERE chat IS NOT NULL AND outbox_stopped IS NULL "
                "AND delivered_seq < last_seq ORDER BY created_at, id"
            ).fetchall()
        return [_agent_session(row) for row in rows]

    # --- prompt ids -------------------------------------------------------------------------

    def prompt_seen(self, session_id: str, prompt_id: str) -> bool:
        with self._lock:
            row = self._row(
                "SELECT 1 FROM agent_session_prompts WHERE session_id = ? AND prompt_id = ?",
                (session_id, prompt_id),
            )
        return row is not None

    def take_prompt(
        self, session_id: str, prompt_id: str, text: str, queue: bool, max_queued: int
    ) -> str:
        """Record a prompt id: "taken" (seen before: nothing to do), "full" (to be queued
        but `max_queued` wait already), "queued" (it waits, with its text) or "run"."""
        with self._transaction():
            seen = self._row(
                "SELECT 1 FROM agent_session_prompts WHERE session_id = ? AND prompt_id = ?",
                (session_id, prompt_id),
            )
            if seen:  # delivered twice at once: the first one took it
                return "taken"
            (waiting, last) = self._db.execute(
                "SELECT COALESCE(SUM(queued), 0), COALESCE(MAX(position), 0) "
                "FROM agent_session_prompts WHERE session_id = ?",
                (session_id,),
            ).fetchone()
            if queue and waiting >= max_queued:
                return "full"
            self._db.execute(
                "INSERT INTO agent_session_prompts (session_id, prompt_id, text, queued, "
                "position) VALUES (?, ?, ?, ?, ?)",
                (session_id, prompt_id, text if queue else None, int(queue), last + 1),
            )
        return "queued" if queue else "run"

    def next_queued_prompt(self, session_id: str) -> tuple[str, str] | None:
        """The oldest waiting prompt, (prompt_id, text), no longer waiting once returned."""
        with self._transaction():
            row = self._row(
                "SELECT prompt_id, text FROM agent_session_prompts WHERE session_id = ? "
                "AND queued = 1 ORDER BY position LIMIT 1",
                (session_id,),
            )
            if row is None:
                return None
            self._db.execute(
                "UPDATE agent_session_prompts SET queued = 0, text = NULL "
                "WHERE session_id = ? AND prompt_id = ?",
                (session_id, row["prompt_id"]),
            )
        return row["prompt_id"], row["text"]

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

    # --- helpers ----------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """The lock and one write transaction: committed, or rolled back on any exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _row(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
        return row


def _stored(column: str, value: Any) -> Any:
    return json.dumps(value) if column in _JSON_COLUMNS and value is not None else value


def _agent_session(row: sqlite3.Row) -> dict[str, Any]:
    record = {c: row[c] for c in AGENT_SESSION_COLUMNS}
    record["chat"] = json.loads(row["chat"]) if row["chat"] else None
    return record


def _workspace(row: sqlite3.Row) -> dict[str, Any]:
    record = dict(row)
    for column in _JSON_COLUMNS:
        if record.get(column) is not None:
            record[column] = json.loads(record[column])
    return record
