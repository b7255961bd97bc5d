"""The project chat's controls: a new chat, a follow-up, stop, a permission answer, the run.

For the project's owner (session or API token; anyone else's project or chat is the same
404 as a made-up id):
    POST /api/projects/{pid}/chats  {message, agent?, permission_mode?}  → 201 ChatInfo
         (starting: a run finds a node, makes the workspace, starts the agent); counted
         against the workspace_create rate limit
    POST /api/projects/{pid}/chats/{cid}/messages  {text}  → 202 ChatMessage (the user's)
    POST /api/projects/{pid}/chats/{cid}/stop  → ChatInfo (stopped)
    POST /api/projects/{pid}/chats/{cid}/permissions/{request_id}  {option_id}  → 202
    GET  /api/projects/{pid}/chats/{cid}/run  → Run (its steps, status, error)

What happens next comes back through the chat's one live path (ProjectData's viewer
WebSocket): the run's progress, the agent's frames. docs/protocols/project-chat.md.
"""

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from wire.agent_session import PromptText
from wire.chat import ChatInfo, ChatMessage
from worker.api.deps import CurrentUser, DeploymentDep
from worker.api.ratelimit import WORKSPACE_CREATE, count_accepted, rate_limited
from worker.chats import flow
from worker.chats.flow import NewChat
from worker.chats.run import Run

router = APIRouter(tags=["chats"])

RequestId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.:-]{1,128}$")]
OptionId = Annotated[str, StringConstraints(min_length=1, max_length=128)]


class FollowUp(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: PromptText


class PermissionChoice(BaseModel):
    model_config = ConfigDict(extra="forbid")

    option_id: OptionId


@router.post(
    "/api/projects/{project_id}/chats",
    status_code=201,
    response_model=ChatInfo,
    # A new chat makes a workspace: it counts against the same limit as one made directly.
    dependencies=[Depends(rate_limited(WORKSPACE_CREATE))],
)
async def create(
    project_id: str, body: NewChat, user: CurrentUser, deployment: DeploymentDep
) -> dict:
    chat = await flow.new_chat(deployment, user, project_id, body)
    await count_accepted(deployment, WORKSPACE_CREATE, user.id)
    return chat


@router.post(
    "/api/projects/{project_id}/chats/{chat_id}/messages",
    status_code=202,
    response_model=ChatMessage,
)
async def follow_up(
    project_id: str, chat_id: str, body: FollowUp, user: CurrentUser, deployment: DeploymentDep
) -> dict:
    return await flow.follow_up(deployment, user, project_id, chat_id, body.text)


@router.post("/api/projects/{project_id}/chats/{chat_id}/stop", response_model=ChatInfo)
async def stop(project_id: str, chat_id: str, user: CurrentUser, deployment: DeploymentDep) -> dict:
    return await flow.stop(deployment, user, project_id, chat_id)


@router.post("/api/projects/{project_id}/chats/{chat_id}/permissions/{request_id}", status_code=202)
async def answer_permission(
    project_id: str,
    chat_id: str,
    request_id: RequestId,
    body: PermissionChoice,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> Response:
    await flow.answer_permission(deployment, user, project_id, chat_id, request_id, body.option_id)
    return Response(status_code=202)


@router.get("/api/projects/{project_id}/chats/{chat_id}/run", response_model=Run)
async def run(project_id: str, chat_id: str, user: CurrentUser, deployment: DeploymentDep) -> dict:
    return await flow.run_of(deployment, user, project_id, chat_id)
