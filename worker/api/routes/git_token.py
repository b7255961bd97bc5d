"""`POST /api/workspaces/{id}/git-token`: a read-only installation token for the workspace's
own repository, for git inside the workspace (through the node agent's credential helper,
agent/channel/git_credentials.py) and for the node's clone of a private repository.

Authenticated as the other workspace callbacks are: the `sam:node` token of the node the
workspace is on, so a node reaches only its own workspaces, and a workspace only its own
repository (worker/github/git_tokens.py). The answer is wire.git.GitToken; never logged.
"""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from wire.git import GitToken
from worker.api.deps import DeploymentDep
from worker.api.routes.workspaces import calling_node_workspace
from worker.github.git_tokens import read_token
from worker.logs import event
from worker.workspaces.model import Workspace

log = logging.getLogger("sam.git_token")
router = APIRouter(tags=["workspaces"])


@router.post("/api/workspaces/{workspace_id}/git-token", response_model=GitToken)
async def git_token(
    workspace: Annotated[Workspace, Depends(calling_node_workspace)],
    deployment: DeploymentDep,
    response: Response,
) -> GitToken:
    token = await read_token(deployment, workspace.user_id, workspace.repository)
    response.headers["Cache-Control"] = "no-store"
    event(log, "git_token.issued", workspace=workspace.id, expires_at=int(token.expires_at))
    return GitToken(password=token.token, expires_at=token.expires_at)
