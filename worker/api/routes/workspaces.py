"""`/api/workspaces`: a user's workspaces, and the callbacks of the agents that run them.

For the owner (session or API token; anyone else's workspace is a 404, like a made-up id):
    GET    /api/workspaces                   {"workspaces": [workspace, ...]}
    POST   /api/workspaces                   {repository, branch?, name?, provider, size?}
                                             → 202 workspace (pending or creating)
    GET    /api/workspaces/{id}              workspace
    POST   /api/workspaces/{id}/stop         workspace (stopped)
    POST   /api/workspaces/{id}/restart      → 202 workspace (creating); a failed one is
                                             rebuilt, as below
    POST   /api/workspaces/{id}/rebuild      → 202 workspace (creating): the repository
                                             cloned afresh, the container made anew, its
                                             lifecycle commands run again
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

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict

from wire import agent_api
from wire.agent_api import Text
from wire.callbacks import ProvisioningFailed, WorkspaceReady
from worker.api.deps import CurrentUser, DeploymentDep
from worker.api.ratelimit import WORKSPACE_CREATE, count_accepted, rate_limited
from worker.auth import scoped_tokens
from worker.config import Config
from worker.deployment import Deployment
from worker.errors import Unauthorized
from worker.nodes.model import Provider
from worker.states import WorkspaceStatus
from worker.workspaces import service as workspaces
from worker.workspaces.model import BOOT_LOG_POLL_SECONDS, Workspace, WorkspaceLinks

router = APIRouter(tags=["workspaces"])

# Generous bounds for the parser (wire.agent_api.Text); the real rules are in
# worker/workspaces/spec.py.


class NewWorkspace(BaseModel):
    model_config = ConfigDict(extra="forbid")

    repository: Text
    branch: Text | None = None
    name: Text | None = None
    provider: Provider
    size: Text | None = None
    # The owner trusts this repository's devcontainer.json: the node honours every
    # property (host mounts, initializeCommand on the node, privileged, host networking)
    # instead of SAM's allowlist. Only for repositories you would run on your own machine.
    trusted_devcontainer: bool | None = None  # None: false


class WorkspaceUrls(BaseModel):
    boot_log: str
    # The agent's live boot log through ws-{id} (with `?token=` from POST
    # /api/terminal/token); null until the agent has the workspace: poll `boot_log` then.
    boot_log_ws: str | None
    terminal_ws: str


class WorkspaceOut(BaseModel):
    """What the API shows the owner (nothing secret is kept on a workspace)."""

    id: str
    name: str
    repository: str
    branch: str | None
    provider: Provider
    size: str | None
    status: WorkspaceStatus
    error_message: str | None
    node_id: str | None
    backend: str | None
    trusted_devcontainer: bool
    container_id: str | None
    remote_user: str | None
    remote_folder: str | None
    dispatched_at: str | None
    ready_at: str | None
    # Idle (worker/workspaces/idle.py): when it was last used, why SAM stopped it, the
    # sam/wip/... branch holding work SAM saved, why it was kept running for its owner.
    last_active_at: str | None
    stopped_reason: str | None
    wip_branch: str | None
    needs_attention: str | None
    created_at: str
    updated_at: str
    urls: WorkspaceUrls
    boot_log_poll_seconds: int  # how often to poll `urls.boot_log` while being created

    @staticmethod
    def fields(workspace: Workspace, links: WorkspaceLinks) -> dict[str, Any]:
        """`workspace` as this model's fields (validation drops the columns it does not show)."""
        return {
            **vars(workspace),
            "urls": links.urls(workspace.id, live=workspace.on_agent),
            "boot_log_poll_seconds": BOOT_LOG_POLL_SECONDS,
        }

    @classmethod
    def of(cls, workspace: Workspace, config: Config) -> "WorkspaceOut":
        return cls.model_validate(cls.fields(workspace, WorkspaceLinks.of(config)))


class WorkspaceList(BaseModel):
    workspaces: list[WorkspaceOut]


class BootLogLine(agent_api.BootLogEntry):
    """A stored entry: always complete (the control plane stamps the time if the agent did not)."""

    message: str
    detail: str | None
    timestamp: str
    source: Literal["control-plane", "agent"]


class BootLogOut(BaseModel):
    entries: list[BootLogLine]
    dropped: int  # the oldest entries that no longer fit


class WorkspaceStatusOut(BaseModel):
    id: str
    status: WorkspaceStatus


def _out(deployment: Deployment, workspace: Workspace) -> WorkspaceOut:
    return WorkspaceOut.of(workspace, deployment.config)


# --- the owner's routes ----------------------------------------------------------------------


@router.get("/api/workspaces", response_model=WorkspaceList)
async def index(user: CurrentUser, deployment: DeploymentDep) -> dict[str, Any]:
    # Plain dicts: FastAPI validates the whole list against WorkspaceList in one call.
    links = WorkspaceLinks.of(deployment.config)
    found = await workspaces.list_workspaces(deployment, user.id)
    return {"workspaces": [WorkspaceOut.fields(workspace, links) for workspace in found]}


@router.post(
    "/api/workspaces",
    status_code=202,
    response_model=WorkspaceOut,
    dependencies=[Depends(rate_limited(WORKSPACE_CREATE))],
)
async def create(
    body: NewWorkspace,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> WorkspaceOut:
    created = await workspaces.create(deployment, user, body.model_dump())
    await count_accepted(deployment, WORKSPACE_CREATE, user.id)  # a refused spec is free
    return _out(deployment, created)


@router.get("/api/workspaces/{workspace_id}", response_model=WorkspaceOut)
async def show(
    workspace_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> WorkspaceOut:
    return _out(deployment, await workspaces.get(deployment, user.id, workspace_id))


@router.post("/api/workspaces/{workspace_id}/stop", response_model=WorkspaceOut)
async def stop(
    workspace_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> WorkspaceOut:
    return _out(deployment, await workspaces.stop(deployment, user.id, workspace_id))


@router.post("/api/workspaces/{workspace_id}/restart", status_code=202, response_model=WorkspaceOut)
async def restart(
    workspace_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> WorkspaceOut:
    return _out(deployment, await workspaces.restart(deployment, user.id, workspace_id))


@router.post("/api/workspaces/{workspace_id}/rebuild", status_code=202, response_model=WorkspaceOut)
async def rebuild(
    workspace_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> WorkspaceOut:
    return _out(deployment, await workspaces.rebuild(deployment, user.id, workspace_id))


@router.delete("/api/workspaces/{workspace_id}", status_code=204)
async def delete(
    workspace_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> Response:
    await workspaces.delete(deployment, user.id, workspace_id)
    return Response(status_code=204)


@router.get("/api/workspaces/{workspace_id}/boot-log", response_model=BootLogOut)
async def read_boot_log(
    workspace_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> BootLogOut:
    return BootLogOut.model_validate(
        await workspaces.read_boot_log(deployment, user.id, workspace_id)
    )


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
    claims = await scoped_tokens.verify(deployment, token.strip(), scoped_tokens.Audience.NODE)
    workspace = await workspaces.find_workspace(deployment, workspace_id)
    if workspace is None:
        raise workspaces.WorkspaceNotFound()
    if workspace.node_id != claims["node"]:
        raise scoped_tokens.WrongScope(
            f"workspace {workspace_id} is not on node {claims['node']!r}"
        )
    return workspace


@router.post("/api/workspaces/{workspace_id}/ready", response_model=WorkspaceStatusOut)
async def ready(
    body: WorkspaceReady,
    workspace: Annotated[Workspace, Depends(calling_node_workspace)],
    deployment: DeploymentDep,
) -> WorkspaceStatusOut:
    done = await workspaces.agent_ready_callback(deployment, workspace, body.model_dump())
    return WorkspaceStatusOut(id=done.id, status=done.status)


@router.post(
    "/api/workspaces/{workspace_id}/provisioning-failed", response_model=WorkspaceStatusOut
)
async def provisioning_failed(
    body: ProvisioningFailed,
    workspace: Annotated[Workspace, Depends(calling_node_workspace)],
    deployment: DeploymentDep,
) -> WorkspaceStatusOut:
    done = await workspaces.agent_failed(deployment, workspace, body.model_dump())
    return WorkspaceStatusOut(id=done.id, status=done.status)


@router.post("/api/workspaces/{workspace_id}/boot-log", response_model=WorkspaceStatusOut)
async def append_boot_log(
    body: agent_api.BootLogEntry,
    workspace: Annotated[Workspace, Depends(calling_node_workspace)],
    deployment: DeploymentDep,
) -> WorkspaceStatusOut:
    await workspaces.agent_boot_log(deployment, workspace, body.model_dump())
    return WorkspaceStatusOut(id=workspace.id, status=workspace.status)
