"""`POST /api/bootstrap/{token}`: a new node trades its one-time token for a callback token.

Called by the node's cloud-init (worker/nodes/providers/hetzner/cloud_init.py, 30-token.sh)
and by the local node launcher, before the agent starts. The token is the only credential,
so there is no session or API token here; it works once, within 15 minutes
(worker/nodes/bootstrap.py), and attempts are rate-limited per client address
(worker/api/ratelimit.py, BOOTSTRAP).
"""

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from worker.api.deps import DeploymentDep
from worker.api.ratelimit import BOOTSTRAP, rate_limited
from worker.auth import scoped_tokens
from worker.nodes import bootstrap

router = APIRouter(tags=["nodes"])


class BootstrapOut(BaseModel):
    node_id: str
    callback_token: str  # a sam:node token for this node; the agent's token file
    expires_at: int
    control_plane_url: str


@router.post("/api/bootstrap/{token}", dependencies=[Depends(rate_limited(BOOTSTRAP))])
async def exchange(token: str, deployment: DeploymentDep) -> BootstrapOut:
    node_id = await bootstrap.redeem(deployment, token)
    minted = await scoped_tokens.mint_node_token(deployment, node_id)
    return BootstrapOut(
        node_id=node_id,
        callback_token=minted.token,
        expires_at=minted.expires_at,
        control_plane_url=scoped_tokens.control_plane_url(deployment.config),
    )
