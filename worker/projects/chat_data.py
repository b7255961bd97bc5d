"""The Worker's side of a project's ProjectData object: its RPC, with domain errors.

    await chat_data.create_chat(deployment, project_id, chat_id, user_id, topic)  -> ChatInfo dict
    await chat_data.add_message(deployment, project_id, chat_id, message_id, frame)
    await chat_data.ingest(deployment, project_id, workspace_id, [OutboxMessage dict])
    await chat_data.link / set_status / get_chat / list_chats / messages / delete_chat /
          delete_project

The object answers a refusal as `{"error", "message"}` (an exception would cross RPC as
bare text); `_checked` (worker/rpc.py) raises it here as the kind of domain error its code
is, so routes and the TaskRunner see NotFound, Forbidden or Conflict like anywhere else.
Times are the deployment's clock, passed as `now`.
"""

from typing import Any

from worker.deployment import Deployment
from worker.errors import Conflict, Forbidden, InvalidInput, NotFound
from worker.rpc import refusals_raised

_checked = refusals_raised(
    "ProjectData",
    {
        "chat_not_found": NotFound,
        "chat_not_linked": Forbidden,
        "chat_full": Conflict,
        "invalid_state_transition": Conflict,
        "invalid_chat_status": InvalidInput,
        "invalid_chat_id": InvalidInput,
        "invalid_message": InvalidInput,
    },
)


def stub(deployment: Deployment, project_id: str) -> Any:
    return deployment.env.PROJECT_DATA.getByName(project_id)


async def create_chat(
    deployment: Deployment, project_id: str, chat_id: str, user_id: str, topic: str
) -> dict:
    return _checked(
        await stub(deployment, project_id).create_chat(
            project_id, chat_id, user_id, topic, deployment.now()
        )
    )


async def add_message(
    deployment: Deployment, project_id: str, chat_id: str, message_id: str, frame: dict
) -> dict | None:
    """The stored message; None when `message_id` was already stored."""
    return _checked(
        await stub(deployment, project_id).add_message(
            project_id, chat_id, message_id, frame, deployment.now()
        )
    )


async def ingest(
    deployment: Deployment, project_id: str, workspace_id: str, messages: list[dict]
) -> dict:
    return _checked(
        await stub(deployment, project_id).ingest(
            project_id, workspace_id, messages, deployment.now()
        )
    )


async def link(
    deployment: Deployment,
    project_id: str,
    chat_id: str,
    workspace_id: str,
    agent_session_id: str,
    run_id: str,
) -> dict:
    return _checked(
        await stub(deployment, project_id).link(
            project_id, chat_id, workspace_id, agent_session_id, run_id, deployment.now()
        )
    )


async def set_status(deployment: Deployment, project_id: str, chat_id: str, status: str) -> dict:
    return _checked(
        await stub(deployment, project_id).set_status(project_id, chat_id, status, deployment.now())
    )


async def get_chat(deployment: Deployment, project_id: str, chat_id: str) -> dict:
    chat = await stub(deployment, project_id).get_chat(project_id, chat_id)
    if chat is None:
        raise NotFound("chat_not_found", f"This project has no chat {chat_id!r}.")
    return chat


async def list_chats(deployment: Deployment, project_id: str) -> list[dict]:
    return await stub(deployment, project_id).list_chats(project_id)


async def messages(
    deployment: Deployment,
    project_id: str,
    chat_id: str,
    after: int | None,
    before: int | None,
    limit: int,
) -> list[dict]:
    return _checked(
        await stub(deployment, project_id).messages(project_id, chat_id, after, before, limit)
    )


async def delete_chat(deployment: Deployment, project_id: str, chat_id: str) -> bool:
    return bool(await stub(deployment, project_id).delete_chat(project_id, chat_id))


async def delete_project(deployment: Deployment, project_id: str) -> int:
    return int(await stub(deployment, project_id).delete_project(project_id))
