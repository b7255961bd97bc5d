"""Agent sessions in the agent's database: their records, their sequenced frames (a log
bounded in bytes), the prompt ids they took and the prompts waiting for a turn, and the
chat outbox's cursor over the frames (agent/sessions/outbox.py)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

from agent.database import Database, utc_now

SESSION_SCHEMA = """
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
"""
# Columns added since the first release, for state directories an older agent created.
SESSION_ADDED_COLUMNS = {
    "agent_sessions": {
        "chat": "TEXT",  # the ChatLink's JSON: the session's frames go to that project chat
        "delivered_seq": "INTEGER NOT NULL DEFAULT 0",  # the chat outbox's cursor
        "outbox_stopped": "TEXT",  # why the control plane refused its frames for good
    },
    "agent_session_frames": {"created_at": "TEXT"},
}
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
# A chat-linked session's log keeps frames its outbox has not delivered beyond the log's
# byte cap, up to this many bytes in all (the control plane down for hours, a busy agent).
MAX_UNDELIVERED_LOG_BYTES = 64 * 1024 * 1024


class SessionRecords(Database):
    """The agent-session part of the agent's Store (agent/persistence.py)."""

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


def _agent_session(row: sqlite3.Row) -> dict[str, Any]:
    record = {c: row[c] for c in AGENT_SESSION_COLUMNS}
    record["chat"] = json.loads(row["chat"]) if row["chat"] else None
    return record
