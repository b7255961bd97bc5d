"""`/api/projects`: a user's projects and the chats under them; the chat outbox's ingest.

For the owner (session or API token; anyone else's project, and anything under it, is a
404 like a made-up id):
    POST   /api/projects       {repository, name?, default_branch?, provider?, node_size?,
                                agent?, permission_mode?}                   → 201 project
    GET    /api/projects                                                    {"projects": [...]}
    GET    /api/projects/{id}                                               project
    PATCH  /api/projects/{id}  {name?, default_branch?, provider?, node_size?, agent?,
                                permission_mode?}                           project
    DELETE /api/projects/{id}                                  → 204, its chats go with it
    GET    /api/projects/{id}/chats                                         {"chats": [...]}
    GET    /api/projects/{id}/chats/{chat}                                  chat
    GET    /api/projects/{id}/chats/{chat}/messages?after=&before=&limit=
                                                               {"messages": [...], "has_more"}
    GET    /api/chats                          every project's chats    {"chats": [...]}

For the agent of a workspace's node (`Authorization: Bearer <sam:node token>`, as the
other workspace callbacks):
    POST   /api/workspaces/{id}/chat-messages  MessageBatch (≤ MAX_BATCH_BYTES) → IngestResult

The viewer WebSocket `/api/projects/{id}/ws` is the edge's (worker/edge/project_viewer.py).
docs/protocols/project-chat.md has the shapes and the bounds.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, ValidationError

from wire.agent_api import Text
from wire.chat import (
    MAX_BATCH_BYTES,
    MAX_PAGE_MESSAGES,
    ChatInfo,
    ChatMessage,
    IngestResult,
    MessageBatch,
)
from worker.api.deps import CurrentUser, DeploymentDep
from worker.api.routes.workspaces import calling_node_workspace
from worker.errors import InvalidInput, TooLarge
from worker.projects import service as projects
from worker.projects.model import Project
from worker.workspaces.model import Workspace

router = APIRouter(tags=["projects"])

DEFAULT_PAGE_MESSAGES = 100


class NewProject(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repository: Text
    name: Text | None = None
    default_branch: Text | None = None
    provider: Text | None = None  # None: local
    node_size: Text | None = None
    agent: Text | None = None  # None: claude-code
    permission_mode: Text | None = None  # None: ask


class ProjectChanges(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Text | None = None
    default_branch: Text | None = None
    provider: Text | None = None
    node_size: Text | None = None
    agent: Text | None = None
    permission_mode: Text | None = None


class ProjectOut(BaseModel):
    id: str
    name: str
    repository: str
    default_branch: str | None
    provider: str
    node_size: str | None
    agent: str
    permission_mode: str
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, project: Project) -> "ProjectOut":
        return cls.model_validate(vars(project))


class ProjectList(BaseModel):
    projects: list[ProjectOut]


class ChatList(BaseModel):
    chats: list[ChatInfo]


class MessagePage(BaseModel):
    messages: list[ChatMessage]
    has_more: bool  # older messages before this page (newest page), newer ones after it


# --- projects ------------------------------------------------------------------------------


@router.post("/api/projects", status_code=201, response_model=ProjectOut)
async def create(body: NewProject, user: CurrentUser, deployment: DeploymentDep) -> ProjectOut:
    return ProjectOut.of(await projects.create(deployment, user, body.model_dump()))


@router.get("/api/projects", response_model=ProjectList)
async def index(user: CurrentUser, deployment: DeploymentDep) -> dict[str, Any]:
    found = await projects.list_projects(deployment, user.id)
    return {"projects": [vars(project) for project in found]}


@router.get("/api/projects/{project_id}", response_model=ProjectOut)
async def show(project_id: str, user: CurrentUser, deployment: DeploymentDep) -> ProjectOut:
    return ProjectOut.of(await projects.get(deployment, user.id, project_id))


@router.patch("/api/projects/{project_id}", response_model=ProjectOut)
async def update(
    project_id: str, body: ProjectChanges, user: CurrentUser, deployment: DeploymentDep
) -> ProjectOut:
    return ProjectOut.of(await projects.update(deployment, user, project_id, body.model_dump()))


@router.delete("/api/projects/{project_id}", status_code=204)
async def delete(project_id: str, user: CurrentUser, deployment: DeploymentDep) -> Response:
    await projects.delete(deployment, user.id, project_id)
    return Response(status_code=204)


# --- chats (reads; the chat flow's writes are in chats.py) ---------------------------------------


@router.get("/api/projects/{project_id}/chats", response_model=ChatList)
async def chats(project_id: str, user: CurrentUser, deployment: DeploymentDep) -> dict[str, Any]:
    return {"chats": await projects.chats(deployment, user.id, project_id)}


@router.get("/api/projects/{project_id}/chats/{chat_id}", response_model=ChatInfo)
async def chat(
    project_id: str, chat_id: str, user: CurrentUser, deployment: DeploymentDep
) -> dict[str, Any]:
    return await projects.chat(deployment, user.id, project_id, chat_id)


@router.get("/api/projects/{project_id}/chats/{chat_id}/messages", response_model=MessagePage)
async def messages(
    project_id: str,
    chat_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
    after: Annotated[int | None, Query(ge=0)] = None,
    before: Annotated[int | None, Query(ge=1)] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_MESSAGES)] = DEFAULT_PAGE_MESSAGES,
) -> dict[str, Any]:
    """No `after`: the newest page (below `before`, if given), as a chat opens and pages
    back; `after=N`: the page right after seq N."""
    page, more = await projects.messages(
        deployment, user.id, project_id, chat_id, after, before, limit
    )
    return {"messages": page, "has_more": more}


@router.get("/api/chats", response_model=ChatList)
async def all_chats(user: CurrentUser, deployment: DeploymentDep) -> dict[str, Any]:
    return {"chats": await projects.all_chats(deployment, user.id)}


# --- the node agent's outbox ----------------------------------------------------------------


@router.post("/api/workspaces/{workspace_id}/chat-messages", response_model=IngestResult)
async def ingest(
    request: Request,
    workspace: Annotated[Workspace, Depends(calling_node_workspace)],
    deployment: DeploymentDep,
) -> dict[str, Any]:
    body = await request.body()
    if len(body) > MAX_BATCH_BYTES:
        raise TooLarge(
            "batch_too_large",
            f"A chat-messages batch is at most {MAX_BATCH_BYTES} bytes: send fewer messages "
            "per call (a single frame that large is truncated by the control plane anyway).",
        )
    try:
        batch = MessageBatch.model_validate_json(body)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
            for problem in exc.errors()[:5]
        )
        raise InvalidInput(
            "invalid_batch", f"The body is not a MessageBatch ({problems or 'not JSON'})."
        ) from None
    return await projects.ingest(deployment, workspace, batch)
