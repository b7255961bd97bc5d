"""What a workspace's changes mean for the chats linked to it (D1's chat index,
`chats.workspace_id`, written by ProjectData on every link).

A workspace became ready or failed (the node agent's callbacks): the runs of its starting
chats are woken, so their workspace_ready step looks now instead of at its next poll.

A chat's agent ended its turn (the ingest of its turn_ended frame): the chat's run is woken,
so a task run's turn_ended step looks now (worker/chats/task_steps.py).

A workspace stopped or deleted through the workspaces API: its chats become stopped. Each
live one has its run cancelled (the agent session is gone with the workspace, so nothing is
sent to the node) and is stopped. Its history stays readable, and the next message starts a
fresh run with the conversation as context.

A failure here is logged, never raised: the workspace's own change has already happened. A
run that was not woken finds the change at its next poll; a stale chat is caught again by
its next follow-up (a delivery to a workspace that is not running ends the run the same way).

    await runs_woken(deployment, user_id, workspace_id) -> int      (how many were starting)
    await turn_ended(deployment, workspace_id, project_id, chat_id)
    await chats_stopped(deployment, user_id, workspace_id) -> int   (how many were live)
    await chats_told(deployment, user_id, workspace_id, step, detail) -> int
        a `run` message (step, succeeded, detail) in each live chat of the workspace, once
        per workspace and step: what SAM did to it (worker/workspaces/idle.py)
"""

import logging
from contextlib import suppress
from typing import Any

from wire.chat import ChatStatus
from worker.chats import runner
from worker.deployment import Deployment
from worker.errors import Conflict, NotFound, SamError
from worker.logs import event
from worker.projects import chat_data

log = logging.getLogger("sam.chats")

_LIVE = (ChatStatus.STARTING, ChatStatus.ACTIVE)


async def runs_woken(deployment: Deployment, user_id: str, workspace_id: str) -> int:
    chats = await _linked_chats(deployment, user_id, workspace_id, (ChatStatus.STARTING,))
    for chat in chats:
        if not chat["run_id"]:
            continue
        try:
            await runner.wake(deployment, chat["run_id"])
        except SamError as exc:
            _failed(exc, "chat.wake_failed", chat, workspace_id)
    return len(chats)


async def turn_ended(
    deployment: Deployment, workspace_id: str, project_id: str, chat_id: str
) -> None:
    """Only a chat linked to `workspace_id` (the workspace whose node sent the frame)."""
    try:
        chat = await chat_data.get_chat(deployment, project_id, chat_id)
    except NotFound:  # refused by the ingest too
        return
    if chat["run_id"] and chat["status"] in _LIVE and chat["workspace_id"] == workspace_id:
        try:
            await runner.wake(deployment, chat["run_id"])
        except SamError as exc:
            _failed(exc, "chat.wake_failed", chat, chat["workspace_id"])


async def chats_stopped(deployment: Deployment, user_id: str, workspace_id: str) -> int:
    chats = await _linked_chats(deployment, user_id, workspace_id, _LIVE)
    for chat in chats:
        try:
            if chat["run_id"]:
                with suppress(NotFound, Conflict):  # no such run, or it has ended already
                    await runner.cancel(deployment, chat["run_id"])
            with suppress(Conflict):  # its run stopped it first
                await chat_data.set_status(
                    deployment, chat["project_id"], chat["id"], str(ChatStatus.STOPPED)
                )
        except SamError as exc:
            _failed(exc, "chat.stop_failed", chat, workspace_id)
    return len(chats)


async def chats_told(
    deployment: Deployment, user_id: str, workspace_id: str, step: str, detail: str
) -> int:
    chats = await _linked_chats(deployment, user_id, workspace_id, _LIVE)
    for chat in chats:
        frame = {"type": "run", "run_id": chat["run_id"], "step": step, "status": "succeeded"}
        try:
            await chat_data.add_message(
                deployment,
                chat["project_id"],
                chat["id"],
                f"workspace:{workspace_id}:{step}",
                {**frame, "detail": detail},
            )
        except SamError as exc:
            _failed(exc, "chat.tell_failed", chat, workspace_id)
    return len(chats)


async def _linked_chats(
    deployment: Deployment, user_id: str, workspace_id: str, statuses: tuple[ChatStatus, ...]
) -> list[dict[str, Any]]:
    marks = ", ".join("?" for _ in statuses)
    rows = (
        await deployment.env.DATABASE.prepare(
            "SELECT project_id, id, run_id FROM chats "
            f"WHERE user_id = ? AND workspace_id = ? AND status IN ({marks})"
        )
        .bind(user_id, workspace_id, *(str(status) for status in statuses))
        .all()
    )
    return list(rows.results)


def _failed(exc: SamError, name: str, chat: dict[str, Any], workspace_id: str) -> None:
    event(
        log, name, level=logging.WARNING, chat=chat["id"], workspace_id=workspace_id, error=exc.code
    )
