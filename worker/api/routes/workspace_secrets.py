"""The secrets a node fetches for a workspace it hosts, each answered `Cache-Control: no-store`
and never logged (the events name the workspace only):

    GET  /api/workspaces/{id}/agent-credential   wire.callbacks.AgentCredential: the owner's
        model key, for the node agent's model proxy (docs/protocols/agent-sessions.md,
        "The model proxy"); without a stored Anthropic key, 409 `agent_credential_missing`
    POST /api/workspaces/{id}/git-token          wire.git.GitToken: a read-only installation
        token for the workspace's own repository (worker/github/git_tokens.py), for git in
        the workspace (agent/channel/git_credentials.py) and the node's private clone

Authenticated as the other workspace callbacks are: the `sam:node` token of the node the
workspace is on (worker/api/routes/workspaces.py), so a node reaches only its own workspaces.
The routes' order is the OpenAPI document's (pages/src/api/openapi.d.ts).
"""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from wire.callbacks import AgentCredential
from wire.git import GitToken
from worker.api.deps import DeploymentDep
from worker.api.routes.workspaces import calling_node_workspace
from worker.auth.agent_keys import open_agent_credential
from worker.github.git_tokens import read_token
from worker.logs import event
from worker.workspaces.model import Workspace

log = logging.getLogger("sam.workspace_secrets")


async def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


router = APIRouter(tags=["workspaces"], dependencies=[Depends(_no_store)])
HostedWorkspace = Annotated[Workspace, Depends(calling_node_workspace)]


@router.get("/api/workspaces/{workspace_id}/agent-credential", response_model=AgentCredential)
async def agent_credential(
    workspace: HostedWorkspace, deployment: DeploymentDep
) -> AgentCredential:
    credential = await open_agent_credential(deployment, workspace.user_id)
    event(log, "agent_credential.issued", workspace=workspace.id, kind=credential.kind)
    return credential


@router.post("/api/workspaces/{workspace_id}/git-token", response_model=GitToken)
async def git_token(workspace: HostedWorkspace, deployment: DeploymentDep) -> GitToken:
    token = await read_token(deployment, workspace.user_id, workspace.repository)
    event(log, "git_token.issued", workspace=workspace.id, expires_at=int(token.expires_at))
    return GitToken(password=token.token, expires_at=token.expires_at)
