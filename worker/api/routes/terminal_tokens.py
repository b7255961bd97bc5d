"""`POST /api/terminal/token`: a browser's short-lived sam:terminal token for a workspace.

    POST /api/terminal/token {workspace_id}
      → 200 {"token", "expires_at" (epoch seconds), "url", "boot_log_url", "workspace_id"}

`url` is the workspace's terminal WebSocket through the ws-{id} proxy
(`ws(s)://ws-{id}.{domain}/workspaces/{id}/terminal/ws`), to be opened with
`?token=<token>`; `boot_log_url` is the agent's live boot log on the same terms, and the
same token opens the workspace's agent sessions on that host (`…/agent-sessions`, its
POSTs and the `…/agent-sessions/{sid}/ws?after=N` viewer). The token
is bound to the caller, the workspace and its node, and to the session or API token the
caller used (signing out or revoking that token ends it at once: worker/auth/grants.py); it
lives 5 minutes: ask for a new one for every connection. Only the owner gets one (anyone
else: 404), only while the workspace's agent has it (creating, for the boot log, or
running; otherwise 409), and at most TERMINAL_TOKEN per minute per user (429).
"""

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from worker.api.deps import CurrentGrant, CurrentUser, DeploymentDep
from worker.api.ratelimit import TERMINAL_TOKEN, rate_limited
from worker.auth import scoped_tokens
from worker.errors import Conflict
from worker.nodes import service as nodes
from worker.workspaces import service as workspaces
from worker.workspaces.model import urls

# One token kind for everything a user opens on a workspace's ws-{id} host (terminals, the
# boot log, agent sessions), rather than a sam:agent-session audience beside it: all three
# are the owner's live view into one workspace on one node, with the same binding (user,
# node, workspace), lifetime and rate limit, and a second kind would only be a copy that
# the proxy and the agent must keep in step. Its `workspace` claim is what keeps a token
# for workspace A out of B's terminals and agents alike.
router = APIRouter(tags=["terminal"])

MAX_ID_CHARS = 64


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspace_id: Annotated[str, Field(min_length=1, max_length=MAX_ID_CHARS)]


class TerminalToken(BaseModel):
    token: str
    expires_at: int
    url: str
    boot_log_url: str
    workspace_id: str


@router.post(
    "/api/terminal/token",
    response_model=TerminalToken,
    dependencies=[Depends(rate_limited(TERMINAL_TOKEN))],
)
async def terminal_token(
    body: TokenRequest,
    user: CurrentUser,
    grant: CurrentGrant,
    deployment: DeploymentDep,
) -> TerminalToken:
    workspace = await workspaces.get(deployment, user.id, body.workspace_id)
    node = (
        None if workspace.node_id is None else await nodes.find_node(deployment, workspace.node_id)
    )
    if not workspace.on_agent or node is None or node.agent_url is None:
        advice = (
            "Restart it first (POST /api/workspaces/{id}/restart)."
            if workspace.status in ("stopped", "error")
            else "Wait until it is running."
        )
        raise Conflict(
            "workspace_not_running",
            f"Workspace {workspace.id} is {workspace.status}; a terminal needs it running. "
            + advice.replace("{id}", workspace.id),
        )
    minted = await scoped_tokens.mint_terminal_token(
        deployment, user.id, node.id, workspace.id, grant
    )
    links = urls(deployment.config, workspace.id, live=True)
    return TerminalToken(
        token=minted.token,
        expires_at=minted.expires_at,
        url=str(links["terminal_ws"]),
        boot_log_url=str(links["boot_log_ws"]),
        workspace_id=workspace.id,
    )
