"""ProjectData: one Durable Object per project (`idFromName(project id)`), its chats.

It keeps each chat (topic, status, the workspace and agent session it is linked to), every
message of it with one sequence for the whole project, and activity events (created,
linked, status changes) in its SQLite storage (tables: durable_objects/project_schema.py,
queries: durable_objects/chat_log.py), and serves the project's viewers over hibernating
WebSockets (durable_objects/chat_viewers.py). docs/protocols/project-chat.md is the
protocol.

Every write is one synchronous SQL transaction with no await inside, followed at once,
still without an await, by its broadcast: concurrent ingests cannot interleave, the
sequence is strictly increasing, and every viewer sees every message once and in order.

RPC methods take the project id first (stored on first use) and the caller's `now`
(seconds since the epoch) where time matters, and answer plain JSON values as wire/chat.py's
models dump them, or `{"error": code, "message": text}` for a request refused (an
exception would reach the caller as bare text on Cloudflare): worker/projects/chat_data.py
turns those into domain errors.

The D1 index of chats (worker/projects/store.py) is written on a chat's creation, link and
status change, and for its message count only once INDEX_EVERY_MESSAGES have come in or
INDEX_EVERY_SECONDS have passed (an alarm catches a chat that went quiet), never per
message.
"""

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from durable_objects import chat_viewers as viewers
from durable_objects.chat_log import ChatLog, ChatRefused
from durable_objects.project_schema import migrate
from wire.chat import ID_PATTERN, MAX_PAGE_MESSAGES, MESSAGE_ID_PATTERN, IngestResult, OutboxMessage
from worker.deployment import Deployment
from worker.logs import event
from worker.platform import DurableObject, Response
from worker.projects import store

log = logging.getLogger("sam.project_data")

_ID = re.compile(ID_PATTERN)
_MESSAGE_ID = re.compile(MESSAGE_ID_PATTERN)

INDEX_EVERY_MESSAGES = 50
INDEX_EVERY_SECONDS = 10.0

Answer = dict[str, Any]


def refusal(refused: ChatRefused) -> Answer:
    return {"error": refused.code, "message": refused.message}


class ProjectData(DurableObject):
    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        self.deployment = Deployment.of(env)
        migrate(ctx.storage)
        self.chat_log = ChatLog(ctx.storage)  # no state of its own: queries over storage

    # --- chats -------------------------------------------------------------------------------

    async def create_chat(
        self, project_id: str, chat_id: str, user_id: str, topic: str, now: float
    ) -> Answer:
        if not _is_id(chat_id):
            return {"error": "invalid_chat_id", "message": f"{chat_id!r} is not a chat id."}
        answer = self._transaction(
            project_id, lambda: self.chat_log.create_chat(chat_id, user_id, topic, now)
        )
        return await self._changed(answer, now)

    async def link(
        self,
        project_id: str,
        chat_id: str,
        workspace_id: str,
        agent_session_id: str,
        run_id: str,
        now: float,
    ) -> Answer:
        answer = self._transaction(
            project_id,
            lambda: self.chat_log.link(chat_id, workspace_id, agent_session_id, run_id, now),
        )
        return await self._changed(answer, now)

    async def set_status(self, project_id: str, chat_id: str, status: str, now: float) -> Answer:
        answer = self._transaction(
            project_id, lambda: self.chat_log.set_status(chat_id, status, now)
        )
        return await self._changed(answer, now)

    async def get_chat(self, project_id: str, chat_id: str) -> Answer | None:
        return self._chat(project_id, chat_id)

    def _chat(self, project_id: str, chat_id: str) -> Answer | None:
        return self._transaction(project_id, lambda: self.chat_log.chat(chat_id))

    async def list_chats(self, project_id: str) -> list[Answer]:
        return self._transaction(project_id, self.chat_log.chats)

    async def delete_chat(self, project_id: str, chat_id: str) -> bool:
        gone = self._transaction(project_id, lambda: self.chat_log.delete_chat(chat_id))
        if gone:
            viewers.chat_deleted(self.ctx, chat_id)
            await store.forget_chat(self.deployment, project_id, chat_id)
            event(log, "chat.deleted", project_id=project_id, chat_id=chat_id)
        return gone

    async def delete_project(self, project_id: str) -> int:
        """Every chat and message gone; the D1 rows are the caller's (worker/projects)."""
        gone = self._transaction(project_id, self.chat_log.delete_all)
        for chat_id in gone:
            viewers.chat_deleted(self.ctx, chat_id)
        for ws in self.ctx.getWebSockets(viewers.PROJECT_TAG):
            if ws.readyState == viewers.OPEN:
                ws.close(viewers.CLOSE_CHAT_DELETED, "the project was deleted")
        await self.ctx.storage.deleteAlarm()
        event(log, "project.chats_deleted", project_id=project_id, chats=len(gone))
        return len(gone)

    # --- messages ----------------------------------------------------------------------------

    async def add_message(
        self, project_id: str, chat_id: str, message_id: str, frame: dict, now: float
    ) -> Answer | None:
        """A control-plane message (the user's prompt, a run's progress); None: a duplicate."""
        if not _MESSAGE_ID.match(str(message_id)) or not isinstance(frame, dict):
            return {
                "error": "invalid_message",
                "message": f"{str(message_id)[:80]!r} is not a message id, or its frame no object.",
            }
        answer = self._transaction(
            project_id, lambda: self.chat_log.append(chat_id, message_id, dict(frame), now, now)
        )
        if answer is not None and "error" not in answer:
            viewers.message(self.ctx, answer)
            await self._index(now)
        return answer

    async def ingest(
        self, project_id: str, workspace_id: str, messages: list[dict], now: float
    ) -> Answer:
        """A node agent's outbox batch: all or nothing if any names a chat that is not
        linked to `workspace_id`; messages over a full chat's cap are dropped (`refused`)."""
        batch = [OutboxMessage.model_validate(message) for message in messages]

        def step() -> tuple[list[Answer], int, int]:
            stored: list[Answer] = []
            duplicates = refused = 0
            for message in batch:
                chat = self.chat_log.chat(message.chat_id)
                if (
                    message.project_id != project_id
                    or chat is None
                    or chat["workspace_id"] != workspace_id
                ):
                    raise ChatRefused(
                        "chat_not_linked",
                        f"Chat {message.chat_id} of project {message.project_id} is not linked "
                        f"to workspace {workspace_id}: a workspace writes only to its own chats.",
                    )
                created_at = message.created_at.timestamp()
                try:
                    added = self.chat_log.append(
                        message.chat_id, message.id, message.frame, created_at, now
                    )
                except ChatRefused as full:
                    assert full.code == "chat_full", full.code
                    refused += 1
                    continue
                if added is None:
                    duplicates += 1
                else:
                    stored.append(added)
            return stored, duplicates, refused

        outcome = self._transaction(project_id, step)
        if isinstance(outcome, dict):
            return outcome
        stored, duplicates, refused = outcome
        for message in stored:
            viewers.message(self.ctx, message)
        if stored:
            await self._index(now)
        return IngestResult(
            accepted=len(stored), duplicates=duplicates, refused=refused
        ).model_dump(mode="json")

    async def messages(
        self,
        project_id: str,
        chat_id: str,
        after: int | None,
        before: int | None,
        limit: int,
    ) -> list[Answer] | Answer:
        """Up to `limit` messages in seq order: those right after `after`, or, when `after`
        is None, the newest below `before` (None: all), as a chat opens on its last page."""
        limit = max(1, min(int(limit), MAX_PAGE_MESSAGES + 1))

        def step() -> list[Answer]:
            if self.chat_log.chat(chat_id) is None:
                raise ChatRefused("chat_not_found", f"This project has no chat {chat_id!r}.")
            return self.chat_log.messages(chat_id, after or 0, before, limit, newest=after is None)

        return self._transaction(project_id, step)

    # --- the viewers' WebSocket -----------------------------------------------------------------

    async def fetch(self, request: Any) -> Response:
        """`/viewer?project=P&chat=C&after=N` (chat and after optional), forwarded by the
        edge once it has checked the caller owns P (worker/edge/project_viewer.py)."""
        query = dict(parse_qsl(urlsplit(request.url).query))
        if request.headers.get("upgrade", "").lower() != "websocket":
            return _refused(426, "upgrade_required", "This is a WebSocket endpoint only.")
        project_id, chat_id = query.get("project", ""), query.get("chat")
        after = query.get("after", "0")
        if not _is_id(project_id) or (chat_id is not None and not _is_id(chat_id)):
            return _bad_request("The project or chat id is not well formed.")
        if not after.isdigit():
            return _bad_request("after must be a message seq (0 or more).")
        if chat_id is not None and self._chat(project_id, chat_id) is None:
            return _refused(404, "chat_not_found", f"This project has no chat {chat_id!r}.")
        return viewers.accept(self.ctx, self.chat_log, chat_id, int(after))

    async def webSocketMessage(self, ws: Any, message: Any) -> None:
        ws.send(
            viewers.error_frame(
                "viewer_read_only",
                "A chat viewer only listens: send prompts, Stop and permission answers "
                "through the API (POST /api/projects/{id}/chats/{chat}/…).",
            )
        )

    async def webSocketClose(self, ws: Any, code: int, reason: str, was_clean: bool) -> None:
        pass  # the runtime answers the close; nothing of a viewer is kept

    async def alarm(self, info: Any = None) -> None:
        """A chat's D1 row fell behind and no message came to bring it up to date."""
        await self._index(self.deployment.now(), force=True)

    # --- plumbing ------------------------------------------------------------------------------

    def _transaction(self, project_id: str, step: Callable[[], Any]) -> Any:
        """`step` in one transaction (rolled back if refused, which answers the refusal)."""
        box: list[Any] = []

        def run() -> None:
            self.chat_log.bind(project_id)
            box.append(step())

        try:
            self.ctx.storage.transactionSync(run)
        except ChatRefused as refused:
            return refusal(refused)
        return box[0]

    async def _changed(self, answer: Answer, now: float) -> Answer:
        if "error" not in answer:
            viewers.chat(self.ctx, answer)
            await self._index(now)
        return answer

    async def _index(self, now: float, *, force: bool = False) -> None:
        """Bring the D1 rows of the chats that are due up to date; arm the alarm for the rest."""
        waiting = False
        for row in self._atomically(lambda: self.chat_log.unindexed()):
            due = (
                force
                or row["changed"]
                or row["chat"]["message_count"] - row["indexed_count"] >= INDEX_EVERY_MESSAGES
                or now - row["indexed_at"] >= INDEX_EVERY_SECONDS
            )
            if not due:
                waiting = True
                continue
            chat, version = row["chat"], row["version"]
            await store.mirror_chat(self.deployment, row["user_id"], version, chat)
            self._atomically(
                lambda chat=chat, version=version: self.chat_log.mark_indexed(
                    chat["id"], version, chat["message_count"], now
                )
            )
        if waiting and await self.ctx.storage.getAlarm() is None:
            await self.ctx.storage.setAlarm((now + INDEX_EVERY_SECONDS) * 1000)

    def _atomically(self, step: Callable[[], Any]) -> Any:
        box: list[Any] = []
        self.ctx.storage.transactionSync(lambda: box.append(step()))
        return box[0]


def _is_id(value: Any) -> bool:
    return isinstance(value, str) and _ID.match(value) is not None


def _bad_request(message: str) -> Response:
    return _refused(400, "invalid_request", message)


def _refused(status: int, code: str, message: str) -> Response:
    return Response.from_json({"error": code, "message": message}, status)
