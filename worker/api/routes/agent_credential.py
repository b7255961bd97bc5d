"""`GET /api/workspaces/{id}/agent-credential`: the workspace owner's model key, for the
node agent's model proxy (docs/protocols/agent-sessions.md, "The model proxy").

Authenticated as the other workspace callbacks are: the `sam:node` token of the node the
workspace is on (worker/api/routes/workspaces.py). The answer is wire.callbacks.
AgentCredential; without a stored Anthropic key, 409 `agent_credential_missing`. The key
is never logged; the event names the workspace and the kind only.
"""

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Response

from wire.callbacks import AgentCredential
from worker.api.deps import DeploymentDep
from worker.api.routes.workspaces import calling_node_workspace
from worker.auth.agent_keys import open_agent_credential
from worker.logs import event
from worker.workspaces.model import Workspace

log = logging.getLogger("sam.agent_credential")
router = APIRouter(tags=["workspaces"])


@router.get("/api/workspaces/{workspace_id}/agent-credential", response_model=AgentCredential)
async def agent_credential(
    workspace: Annotated[Workspace, Depends(calling_node_workspace)],
    deployment: DeploymentDep,
    response: Response,
) -> AgentCredential:
    credential = await open_agent_credential(deployment, workspace.user_id)
    response.headers["Cache-Control"] = "no-store"
    event(log, "agent_credential.issued", workspace=workspace.id, kind=credential.kind)
    return credential
