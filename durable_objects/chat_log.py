"""ProjectData's storage: chats, their messages and activity, as synchronous SQL.

Every method here runs inside one `transactionSync` of the caller's (ProjectData), with no
await anywhere, so two writes never interleave: the project's `last_seq` is read and
bumped in the same transaction that stores the message, which makes the sequence strictly
increasing (1, 2, 3, … across all the project's chats) whatever the concurrency.
Answers are plain JSON values, as wire/chat.py's models dump them.
"""

import json
from datetime import UTC, datetime
from typing import Any

from wire.chat import (
    MAX_CHAT_MESSAGES,
    MAX_MESSAGE_BYTES,
    MAX_TOPIC_CHARS,
    ChatInfo,
    ChatMessage,
    ChatStatus,
    role_of,
)

# A truncated frame keeps its type, its session seq and this much of its JSON text, so the
# whole marker stays under MAX_MESSAGE_BYTES.
TRUNCATED_PREFIX_BYTES = MAX_MESSAGE_BYTES - 1024

# The chat status changes allowed (a follow-up on a stopped or failed chat starts anew).
CHAT_TRANSITIONS: dict[ChatStatus, frozenset[ChatStatus]] = {
    ChatStatus.STARTING: frozenset({ChatStatus.ACTIVE, ChatStatus.STOPPED, ChatStatus.FAILED}),
    ChatStatus.ACTIVE: frozenset({ChatStatus.STARTING, ChatStatus.STOPPED, ChatStatus.FAILED}),
    ChatStatus.STOPPED: frozenset({ChatStatus.STARTING, ChatStatus.ACTIVE, ChatStatus.FAILED}),
    ChatStatus.FAILED: frozenset({ChatStatus.STARTING, ChatStatus.ACTIVE, ChatStatus.STOPPED}),
}

_CHAT_COLUMNS = (
    "id, topic, status, workspace_id, agent_session_id, run_id, message_count, last_seq, "
    "created_at, last_activity_at"
)
_MESSAGE_COLUMNS = "seq, id, chat_id, role, frame, truncated, created_at"


class ChatRefused(Exception):
    """A request ProjectData will not carry out; `code` is the API's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _time(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, UTC)


def bounded_frame(frame: dict[str, Any]) -> tuple[dict[str, Any], bool, str]:
    """(the frame as kept, whether it was cut, its JSON text): over MAX_MESSAGE_BYTES a
    frame is replaced by `{"type", "seq"?, "prefix"}`, the first bytes of its JSON."""
    text = json.dumps(frame, separators=(",", ":"), ensure_ascii=False)
    encoded = text.encode()
    if len(encoded) <= MAX_MESSAGE_BYTES:
        return frame, False, text
    kept: dict[str, Any] = {"type": frame.get("type")}
    if isinstance(frame.get("seq"), int):
        kept["seq"] = frame["seq"]
    kept["prefix"] = encoded[:TRUNCATED_PREFIX_BYTES].decode("utf-8", "ignore")
    return kept, True, json.dumps(kept, separators=(",", ":"), ensure_ascii=False)


class ChatLog:
    def __init__(self, storage: Any) -> None:
        self.storage = storage

    # --- the project ---------------------------------------------------------------------

    def bind(self, project_id: str) -> None:
        """Remember which project this object is (an id cannot be read back from a name)."""
        rows = self._sql("SELECT project_id FROM project")
        if not rows:
            self._sql("INSERT INTO project (id, project_id) VALUES (1, ?)", project_id)
            return
        assert rows[0][0] == project_id, f"ProjectData of {rows[0][0]} asked for {project_id}"

    def project_id(self) -> str | None:
        rows = self._sql("SELECT project_id FROM project")
        return rows[0][0] if rows else None

    def last_seq(self) -> int:
        rows = self._sql("SELECT last_seq FROM project")
        return int(rows[0][0]) if rows else 0

    # --- chats -------------------------------------------------------------------------------

    def create_chat(self, chat_id: str, user_id: str, topic: str, now: float) -> dict:
        """The chat, created starting (the same id again answers the chat as it is)."""
        existing = self.chat(chat_id)
        if existing is not None:
            return existing
        topic = " ".join(str(topic).split())[:MAX_TOPIC_CHARS] or "New chat"
        self._sql(
            "INSERT INTO chats (id, user_id, topic, status, created_at, last_activity_at) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            chat_id,
            user_id,
            topic,
            str(ChatStatus.STARTING),
            now,
            now,
        )
        self._activity(chat_id, "created", {"topic": topic}, now)
        return self._required(chat_id)

    def link(
        self, chat_id: str, workspace_id: str, agent_session_id: str, run_id: str, now: float
    ) -> dict:
        """Tie the chat to its run's workspace and agent session: their messages come in."""
        chat = self._required(chat_id)
        link = (workspace_id, agent_session_id, run_id)
        if (chat["workspace_id"], chat["agent_session_id"], chat["run_id"]) == link:
            return chat
        self._sql(
            "UPDATE chats SET workspace_id = ?, agent_session_id = ?, run_id = ?, "
            "last_activity_at = ?, version = version + 1 WHERE id = ?",
            *link,
            now,
            chat_id,
        )
        detail = {"workspace_id": workspace_id, "agent_session_id": agent_session_id}
        self._activity(chat_id, "linked", {**detail, "run_id": run_id}, now)
        return self._required(chat_id)

    def set_status(self, chat_id: str, status: str, now: float) -> dict:
        chat = self._required(chat_id)
        try:
            new = ChatStatus(status)
        except ValueError:
            raise ChatRefused(
                "invalid_chat_status",
                f"{status!r} is not a chat status; use one of {', '.join(ChatStatus)}.",
            ) from None
        current = ChatStatus(chat["status"])
        if new == current:
            return chat
        if new not in CHAT_TRANSITIONS[current]:
            raise ChatRefused(
                "invalid_state_transition", f"A chat cannot go from {current!r} to {new!r}."
            )
        self._sql(
            "UPDATE chats SET status = ?, last_activity_at = ?, version = version + 1 WHERE id = ?",
            str(new),
            now,
            chat_id,
        )
        self._activity(chat_id, "status", {"from": str(current), "to": str(new)}, now)
        return self._required(chat_id)

    def chat(self, chat_id: str) -> dict | None:
        rows = self._sql(f"SELECT {_CHAT_COLUMNS} FROM chats WHERE id = ?", chat_id)
        return self._chat_info(rows[0]) if rows else None

    def chats(self) -> list[dict]:
        rows = self._sql(f"SELECT {_CHAT_COLUMNS} FROM chats ORDER BY last_activity_at DESC, id")
        return [self._chat_info(row) for row in rows]

    def delete_chat(self, chat_id: str) -> bool:
        self._sql("DELETE FROM messages WHERE chat_id = ?", chat_id)
        self._sql("DELETE FROM activity WHERE chat_id = ?", chat_id)
        return bool(self._sql("DELETE FROM chats WHERE id = ? RETURNING 1", chat_id))

    def delete_all(self) -> list[str]:
        """Every chat, message and event gone (the sequence is kept: seqs are never reused)."""
        gone = [row[0] for row in self._sql("SELECT id FROM chats")]
        self._sql("DELETE FROM messages")
        self._sql("DELETE FROM activity")
        self._sql("DELETE FROM chats")
        return gone

    # --- messages ----------------------------------------------------------------------------

    def append(
        self, chat_id: str, message_id: str, frame: dict[str, Any], created_at: float, now: float
    ) -> dict | None:
        """The stored message, or None when `message_id` is already stored."""
        if self._sql("SELECT 1 FROM messages WHERE id = ?", message_id):
            return None
        chat = self._required(chat_id)
        if chat["message_count"] >= MAX_CHAT_MESSAGES:
            raise ChatRefused(
                "chat_full",
                f"Chat {chat_id} holds {MAX_CHAT_MESSAGES} messages, as many as a chat "
                "may: start a new chat to go on.",
            )
        kept, truncated, text = bounded_frame(frame)
        role = role_of(frame)
        seq = self.last_seq() + 1
        self._sql("UPDATE project SET last_seq = ?", seq)
        self._sql(
            f"INSERT INTO messages ({_MESSAGE_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
            seq,
            message_id,
            chat_id,
            str(role),
            text,
            int(truncated),
            created_at,
        )
        self._sql(
            "UPDATE chats SET message_count = message_count + 1, last_seq = ?, "
            "last_activity_at = max(last_activity_at, ?) WHERE id = ?",
            seq,
            now,
            chat_id,
        )
        return ChatMessage(
            seq=seq,
            id=message_id,
            chat_id=chat_id,
            role=role,
            frame=kept,
            truncated=truncated,
            created_at=_time(created_at),
        ).model_dump(mode="json")

    def messages(
        self, chat_id: str, after: int, before: int | None, limit: int, newest: bool = False
    ) -> list[dict]:
        """Up to `limit` of the chat's messages with after < seq < before, in seq order:
        the oldest such when not `newest`, else the newest (a chat opens on its last page)."""
        bound = before if before is not None else self.last_seq() + 1
        order = "DESC" if newest else "ASC"
        rows = self._sql(
            f"SELECT {_MESSAGE_COLUMNS} FROM messages WHERE chat_id = ? AND seq > ? AND seq < ? "
            f"ORDER BY seq {order} LIMIT ?",
            chat_id,
            after,
            bound,
            limit,
        )
        if newest:
            rows.reverse()
        return [self._message(row) for row in rows]

    def count_after(self, chat_id: str, after: int) -> int:
        rows = self._sql(
            "SELECT count(*) FROM messages WHERE chat_id = ? AND seq > ?", chat_id, after
        )
        return int(rows[0][0])

    # --- the D1 index --------------------------------------------------------------------------

    def unindexed(self) -> list[dict]:
        """Every chat whose D1 row is behind: `{"chat", "user_id", "version", "changed"
        (more than its message count), "indexed_count", "indexed_at"}`."""
        rows = self._sql(
            f"SELECT {_CHAT_COLUMNS}, user_id, version, indexed_version, indexed_count, "
            "indexed_at FROM chats WHERE version != indexed_version "
            "OR message_count != indexed_count"
        )
        return [
            {
                "chat": self._chat_info(row[:10]),
                "user_id": row[10],
                "version": int(row[11]),
                "changed": row[11] != row[12],
                "indexed_count": int(row[13]),
                "indexed_at": float(row[14]),
            }
            for row in rows
        ]

    def mark_indexed(self, chat_id: str, version: int, count: int, now: float) -> None:
        self._sql(
            "UPDATE chats SET indexed_version = max(indexed_version, ?), "
            "indexed_count = ?, indexed_at = ? WHERE id = ?",
            version,
            count,
            now,
            chat_id,
        )

    # --- plumbing ------------------------------------------------------------------------------

    def _required(self, chat_id: str) -> dict:
        chat = self.chat(chat_id)
        if chat is None:
            raise ChatRefused("chat_not_found", f"This project has no chat {chat_id!r}.")
        return chat

    def _activity(self, chat_id: str, kind: str, detail: dict[str, Any], now: float) -> None:
        self._sql(
            "INSERT INTO activity (chat_id, kind, detail, created_at) VALUES (?, ?, ?, ?)",
            chat_id,
            kind,
            json.dumps(detail),
            now,
        )

    def _chat_info(self, row: list[Any]) -> dict:
        project_id = self.project_id()
        return ChatInfo(
            id=row[0],
            project_id=project_id or "",
            topic=row[1],
            status=row[2],
            workspace_id=row[3],
            agent_session_id=row[4],
            run_id=row[5],
            message_count=int(row[6]),
            last_seq=int(row[7]),
            created_at=_time(row[8]),
            last_activity_at=_time(row[9]),
        ).model_dump(mode="json")

    @staticmethod
    def _message(row: list[Any]) -> dict:
        return ChatMessage(
            seq=int(row[0]),
            id=row[1],
            chat_id=row[2],
            role=row[3],
            frame=json.loads(row[4]),
            truncated=bool(row[5]),
            created_at=_time(row[6]),
        ).model_dump(mode="json")

    def _sql(self, query: str, *bindings: Any) -> list[list[Any]]:
        return [list(row) for row in self.storage.sql.exec(query, *bindings).raw()]
