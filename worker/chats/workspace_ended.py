"""A workspace stopped or deleted through the workspaces API: its chats become stopped.

The chats linked to the workspace are found in D1's chat index (`chats.workspace_id`,
written by ProjectData on every link); each live one has its run cancelled (the agent
session is gone with the workspace, so nothing is sent to the node) and is stopped. Its
history stays readable, and the next message starts a fresh run with the conversation as
context. A failure here is logged, never raised: the workspace's own stop or delete has
already happened, and a stale chat is caught again by its next follow-up (a delivery to a
workspace that is not running ends the run the same way).

    await chats_stopped(deployment, user_id, workspace_id) -> int   (how many were live)
"""

import logging
from contextlib import suppress

from wire.chat import ChatStatus
from worker.chats import runner
from worker.deployment import Deployment
from worker.errors import Conflict, NotFound, SamError
from worker.logs import event
from worker.projects import chat_data

log = logging.getLogger("sam.chats")

_LIVE = (str(ChatStatus.STARTING), str(ChatStatus.ACTIVE))


async def chats_stopped(deployment: Deployment, user_id: str, workspace_id: str) -> int:
    rows = (
        await deployment.env.DATABASE.prepare(
            "SELECT project_id, id, run_id FROM chats "
            "WHERE user_id = ? AND workspace_id = ? AND status IN (?, ?)"
        )
        .bind(user_id, workspace_id, *_LIVE)
        .all()
    )
    chats = list(rows.results)
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
            event(
                log,
                "chat.stop_failed",
                level=logging.WARNING,
                chat=chat["id"],
                workspace_id=workspace_id,
                error=exc.code,
            )
    return len(chats)
