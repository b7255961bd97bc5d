"""`/api/workspaces`: a user's workspaces, and the callbacks of the agents that run them.

For the owner (session or API token; anyone else's workspace is a 404, like a made-up id):
    GET    /api/workspaces                   {"workspaces": [workspace, ...]}
    POST   /api/workspaces                   {repository, branch?, name?, provider, size?}
                                             → 202 workspace (pending or creating)
    GET    /api/workspaces/{id}              workspace
    POST   /api/workspaces/{id}/stop         workspace (stopped)
    POST   /api/workspaces/{id}/restart      → 202 workspace (creating)
    DELETE /api/workspaces/{id}              204
    GET    /api/workspaces/{id}/boot-log     {"entries": [entry, ...], "dropped": n}

For the agent of the workspace's node, `Authorization: Bearer <sam:node token for that
node>` (another node's token: 403; another audience, expired or forged: 401):
    POST   /api/workspaces/{id}/ready                {state, container_id, remote_user,
                                                     remote_folder, backend} → running
    POST   /api/workspaces/{id}/provisioning-failed  {step, message, detail, hint} → error
    POST   /api/workspaces/{id}/boot-log             a boot-log entry, appended

The shapes are in docs/protocols/control-plane-api.md.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from worker.api.deps import CurrentUser, DeploymentDep
from worker.api.ratelimit import WORKSPACE_CREATE, rate_limited
from worker.auth import jwt as tokens
from worker.deployment import Deployment
from worker.errors import Unauthorized
from worker.nodes.model import Provider
from worker.workspaces import service as workspaces
from worker.workspaces.model import Workspace

router = APIRouter(tags=["workspaces"])

# Generous bounds for the parser; the real rules are in worker/workspaces/spec.py.
MAX_FIELD_CHARS = 4096
MAX_CALLBACK_TEXT_CHARS = 64 * 1024

Text = Annotated[str, Field(max_length=MAX_FIELD_CHARS)]
CallbackText = Annotated[str, Field(max_length=MAX_CALLBACK_TEXT_CHARS)]


class NewWorkspace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repository: Text
    branch: Text | None = None
    name: Text | None = None
    provider: Provider
    size: Text | None = None


class Ready(BaseModel):
    # Newer agents may report more; what this control plane does not know is dropped.
    model_config = ConfigDict(extra="ignore")

    state: Text | None = None
    container_id: Text | None = None
    remote_user: Text | None = None
    remote_folder: Text | None = None
    backend: Text | None = None


class Failed(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: Text | None = None
    message: CallbackText | None = None
    detail: CallbackText | None = None
    hint: CallbackText | None = None


class BootLogEntry(BaseModel):
    model_config = ConfigDict(extra="ignore")

    step: Text
    status: Literal["started", "succeeded", "failed"]
    message: CallbackText = ""
    detail: CallbackText | None = None
    timestamp: Text | None = None


def _json(deployment: Deployment, workspace: Workspace, status: int = 200) -> JSONResponse:
    return JSONResponse(workspace.public(deployment.config), status)


# --- the owner's routes ----------------------------------------------------------------------


@router.get("/api/workspaces")
async def index(user: CurrentUser, deployment: DeploymentDep) -> JSONResponse:
    config = deployment.config
    found = await workspaces.list_workspaces(deployment, user.id)
    return JSONResponse({"workspaces": [workspace.public(config) for workspace in found]})


@router.post(
    "/api/workspaces", status_code=202, dependencies=[Depends(rate_limited(WORKSPACE_CREATE))]
)
async def create(
    body: NewWorkspace,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> JSONResponse:
    workspace = await workspaces.create(deployment, user.id, body.model_dump())
    return _json(deployment, workspace, 202)


@router.get("/api/workspaces/{workspace_id}")
async def show(
    workspace_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> JSONResponse:
    return _json(deployment, await workspaces.get(deployment, user.id, workspace_id))


@router.post("/api/workspaces/{workspace_id}/stop")
async def stop(
    workspace_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> JSONResponse:
    return _json(deployment, await workspaces.stop(deployment, user.id, workspace_id))


@router.post("/api/workspaces/{workspace_id}/restart", status_code=202)
async def restart(
    workspace_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> JSONResponse:
    return _json(deployment, await workspaces.restart(deployment, user.id, workspace_id), 202)


@router.delete("/api/workspaces/{workspace_id}", status_code=204)
async def delete(
    workspace_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> Response:
    await workspaces.delete(deployment, user.id, workspace_id)
    return Response(status_code=204)


@router.get("/api/workspaces/{workspace_id}/boot-log")
async def read_boot_log(
    workspace_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> JSONResponse:
    return JSONResponse(await workspaces.read_boot_log(deployment, user.id, workspace_id))


# --- the agent's callbacks -------------------------------------------------------------------


async def calling_node_workspace(
    workspace_id: str, request: Request, deployment: DeploymentDep
) -> Workspace:
    """The path's workspace, if the caller holds the sam:node token of its node."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "unauthorized",
            "Workspace callbacks need `Authorization: Bearer <the node's callback token>`.",
        )
    # Verified before the lookup, so nobody without a node token learns which ids exist.
    claims = await tokens.verify(deployment, token.strip(), tokens.Audience.NODE)
    workspace = await workspaces.find_workspace(deployment, workspace_id)
    if workspace is None:
        raise workspaces.WorkspaceNotFound()
    if workspace.node_id != claims["node"]:
        raise tokens.WrongScope(f"workspace {workspace_id} is not on node {claims['node']!r}")
    return workspace


@router.post("/api/workspaces/{workspace_id}/ready")
async def ready(
    body: Ready,
    workspace: Annotated[Workspace, Depends(calling_node_workspace)],
    deployment: DeploymentDep,
) -> dict[str, str]:
    done = await workspaces.agent_ready_callback(deployment, workspace, body.model_dump())
    return {"id": done.id, "status": done.status}


@router.post("/api/workspaces/{workspace_id}/provisioning-failed")
async def provisioning_failed(
    body: Failed,
    workspace: Annotated[Workspace, Depends(calling_node_workspace)],
    deployment: DeploymentDep,
) -> dict[str, str]:
    done = await workspaces.agent_failed(deployment, workspace, body.model_dump())
    return {"id": done.id, "status": done.status}


@router.post("/api/workspaces/{workspace_id}/boot-log")
async def append_boot_log(
    body: BootLogEntry,
    workspace: Annotated[Workspace, Depends(calling_node_workspace)],
    deployment: DeploymentDep,
) -> dict[str, str]:
    await workspaces.agent_boot_log(deployment, workspace, body.model_dump())
    return {"id": workspace.id, "status": workspace.status}
