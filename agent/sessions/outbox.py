"""The chat outbox: a chat-linked session's frames, to its project chat on the control plane.

The frames are stored already (agent_session_frames, in seq order), so the outbox is a
cursor over them: each session's `delivered_seq`, moved on once the control plane has
answered a batch (`POST /api/workspaces/{id}/chat-messages`, wire.chat.MessageBatch, the
node's callback token). The frame log keeps what is not delivered yet (agent/persistence.py),
and a node agent that starts again resumes every cursor, so frames arrive in order, and a
batch whose answer was lost is sent again (the control plane takes each message id once).

One sender per session runs while frames wait: it posts at once when a frame is stored and
nothing is in flight (eager: no flush timer), and the frames stored during a POST go out
together in the next (at most MAX_BATCH_MESSAGES, MAX_BATCH_BYTES). A control plane that is
down is retried with backoff until it answers; one that refuses for good (a 4xx other than
the retryable ones, e.g. chat_not_linked) stops that session's outbox, logged once. A frame
over MAX_MESSAGE_BYTES goes as it is (the control plane keeps a marked prefix of it); one too
large for a batch alone goes cut down to fit, its JSON beginning as the frame's does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from datetime import UTC, datetime
from typing import Any

from agent.control_plane import ControlPlane
from agent.errors import ControlPlaneError
from agent.persistence import Store
from wire.chat import (
    MAX_BATCH_BYTES,
    MAX_BATCH_MESSAGES,
    MessageBatch,
    OutboxMessage,
    message_id,
)

log = logging.getLogger(__name__)

RETRY_BASE_SECONDS = 0.25
# A batch's body beside its messages: `{"messages":[` … `]}` and the commas between them.
BATCH_ENVELOPE_BYTES = 16
# A frame too large for a batch alone is cut to this (the rest of a batch: its message's
# other fields), its longest strings first, at most this many times (then to its type).
FRAME_BUDGET_BYTES = MAX_BATCH_BYTES - 4096
MAX_CUTS = 64


class ChatOutbox:
    def __init__(self, store: Store, control_plane: ControlPlane, retry_max_seconds: float) -> None:
        self._store = store
        self._control_plane = control_plane
        self._retry_max_seconds = retry_max_seconds
        self._senders: dict[str, asyncio.Task[None]] = {}

    def resume(self) -> None:
        """After the node agent started: send what its sessions' outboxes still hold."""
        for record in self._store.undelivered_sessions():
            self.notify(record["id"])

    def notify(self, session_id: str) -> None:
        """A frame of the session was stored: send it now unless a send is in flight (then
        it goes with the next batch)."""
        sender = self._senders.get(session_id)
        if sender is not None and not sender.done():
            return
        record = self._store.agent_session(session_id)
        if record is None or record["chat"] is None or record["outbox_stopped"]:
            return
        sender = self._senders[session_id] = asyncio.create_task(self._send(record))
        sender.add_done_callback(_report_crash)

    async def flush(self, session_ids: list[str], timeout_seconds: float) -> None:
        """Wait (at most `timeout_seconds`) for the sessions' senders to deliver everything."""
        senders = [self._senders[s] for s in session_ids if s in self._senders]
        if senders:
            await asyncio.wait(senders, timeout=timeout_seconds)

    async def close(self) -> None:
        senders, self._senders = list(self._senders.values()), {}
        for sender in senders:
            sender.cancel()
        for sender in senders:
            with contextlib.suppress(asyncio.CancelledError):
                await sender

    async def _send(self, record: dict[str, Any]) -> None:
        session_id, workspace_id = record["id"], record["workspace_id"]
        chat = record["chat"]
        delivered = record["delivered_seq"]
        failures = 0
        while frames := self._store.dated_frames_after(session_id, delivered, MAX_BATCH_MESSAGES):
            batch = _batch(session_id, chat, frames)
            try:
                await self._control_plane.chat_messages(workspace_id, batch)
            except ControlPlaneError as exc:
                if not exc.retryable:
                    log.error(
                        "chat_outbox.stopped session=%s chat=%s error=%s: its frames no longer "
                        "go to the project chat",
                        session_id,
                        chat["chat_id"],
                        exc,
                    )
                    self._store.stop_outbox(session_id, exc.code)
                    return
                failures += 1
                delay = min(RETRY_BASE_SECONDS * 2 ** (failures - 1), self._retry_max_seconds)
                log.warning(
                    "chat_outbox.send_failed session=%s attempt=%d retry_in=%.2fs error=%s",
                    session_id,
                    failures,
                    delay,
                    exc,
                )
                await asyncio.sleep(delay)
                continue
            if failures:
                log.info("chat_outbox.resumed session=%s after=%d failures", session_id, failures)
                failures = 0
            delivered = batch.messages[-1].frame["seq"]
            self._store.mark_delivered(session_id, delivered)


def _report_crash(sender: asyncio.Task[None]) -> None:
    """A bug of ours stopped a sender: say so (the next frame of its session starts another)."""
    if not sender.cancelled() and (exc := sender.exception()) is not None:
        log.error("chat_outbox.crashed", exc_info=exc)


def _batch(
    session_id: str, chat: dict[str, str], frames: list[tuple[int, str, str | None]]
) -> MessageBatch:
    """The longest run of `frames` from the first that fits one batch's bytes (the first
    always goes: cut down when it would not fit a batch alone)."""
    messages: list[OutboxMessage] = []
    size = BATCH_ENVELOPE_BYTES
    for seq, body, stored_at in frames:
        frame = json.loads(body)
        message = _message(session_id, chat, frame, stored_at)
        length = len(message.model_dump_json().encode()) + 1
        if not messages and size + length > MAX_BATCH_BYTES:
            message = _message(session_id, chat, cut_to_fit(frame, FRAME_BUDGET_BYTES), stored_at)
            length = len(message.model_dump_json().encode()) + 1
            assert size + length <= MAX_BATCH_BYTES, (seq, length)
            log.warning(
                "chat_outbox.truncated session=%s seq=%d bytes=%d", session_id, seq, len(body)
            )
        elif size + length > MAX_BATCH_BYTES:
            break
        messages.append(message)
        size += length
    return MessageBatch(messages=messages)


def _message(
    session_id: str, chat: dict[str, str], frame: dict[str, Any], stored_at: str | None
) -> OutboxMessage:
    created_at = datetime.fromisoformat(stored_at) if stored_at else datetime.now(UTC)
    return OutboxMessage(
        id=message_id(session_id, frame),
        project_id=chat["project_id"],
        chat_id=chat["chat_id"],
        frame=frame,
        created_at=created_at,
    )


def cut_to_fit(frame: dict[str, Any], budget_bytes: int) -> dict[str, Any]:
    """A copy of `frame` whose JSON fits `budget_bytes`, marked `truncated`: its longest
    strings lose their tails, so its JSON begins as the frame's does and the control plane
    keeps the same prefix of it as of any frame over MAX_MESSAGE_BYTES."""
    copy: dict[str, Any] = {**json.loads(json.dumps(frame)), "truncated": True}
    for _ in range(MAX_CUTS):
        over = len(json.dumps(copy, separators=(",", ":"), ensure_ascii=False).encode())
        over -= budget_bytes
        if over <= 0:
            return copy
        holder, key = _longest_string(copy)
        if holder is None:
            break
        text = holder[key].encode()  # escaping only adds: cutting `over` bytes is enough
        holder[key] = text[: max(0, len(text) - over)].decode(errors="ignore")
    return {k: frame[k] for k in ("type", "seq", "prompt_id") if k in frame} | {"truncated": True}


def _longest_string(node: Any) -> tuple[Any, Any]:
    """(the dict or list holding the longest non-empty string in `node`, its key)."""
    best: tuple[Any, Any, int] = (None, None, 0)
    stack = [node]
    while stack:
        current = stack.pop()
        items = current.items() if isinstance(current, dict) else enumerate(current)
        for key, value in items:
            if isinstance(value, str) and len(value) > best[2]:
                best = (current, key, len(value))
            elif isinstance(value, dict | list):
                stack.append(value)
    return best[0], best[1]
