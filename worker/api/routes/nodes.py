"""`/api/nodes`: a user's nodes, and the callbacks of the nodes' agents.

For the owner (session or API token; anyone else's node is a 404, exactly like a made-up id):
    GET    /api/nodes               {"nodes": [node, ...]}
    POST   /api/nodes               {name?, provider: "local"|"hetzner", size?, location?}
                                    → 201 node (creating until its agent calls back)
    GET    /api/nodes/{id}          node
    DELETE /api/nodes/{id}          204; VM, DNS record and row go (409 while it holds
                                    workspaces)

For the node's agent, `Authorization: Bearer <sam:node token for that node>` (another
node's token: 403; another audience, expired or forged: 401):
    POST   /api/nodes/{id}/ready      {agent_port, version?} → creating → running
    POST   /api/nodes/{id}/heartbeat  {cpu_percent, memory, disk, active_workspaces,
                                      agent_version, workspaces (how recently each was
                                      used)} → {"status", "health"} and, once the
                                      node's token is past half its life, "callback_token"
    POST   /api/nodes/{id}/tls-certificate  {csr} → {certificate}: a cloud node's Origin CA
                                      certificate for vm-{id}.{domain} (worker/nodes/origin_ca.py)
"""

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, StringConstraints

from wire.callbacks import Beat, Heartbeat, NodeMetrics, NodeReady
from worker.api.deps import CurrentUser, DeploymentDep
from worker.auth import scoped_tokens
from worker.deployment import Deployment
from worker.errors import Unauthorized
from worker.logs import event
from worker.nodes import origin_ca
from worker.nodes import service as nodes
from worker.nodes.model import Node, Provider
from worker.states import NodeHealth, NodeStatus
from worker.workspaces import dispatch, idle

log = logging.getLogger("sam.nodes")
router = APIRouter(tags=["nodes"])

MAX_NAME_CHARS = 64
NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"  # no control characters
# Hetzner server type and location names (`cx22`, `fsn1`) and anything like them.
PROVIDER_OPTION_PATTERN = r"^[a-z0-9][a-z0-9-]{0,31}$"
# A node's callback token is renewed on a heartbeat once this much of its life is gone.
RENEW_AFTER_SECONDS = scoped_tokens.NODE_TOKEN_SECONDS / 2

Name = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True, min_length=1, max_length=MAX_NAME_CHARS, pattern=NAME_PATTERN
    ),
]
ProviderOption = Annotated[str, StringConstraints(pattern=PROVIDER_OPTION_PATTERN)]


class NewNode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    provider: Provider
    size: ProviderOption | None = None
    location: ProviderOption | None = None


class NodeOut(BaseModel):
    """What the API shows the node's owner (nothing secret is kept on a node)."""

    id: str
    name: str
    provider: Provider
    status: NodeStatus
    health: NodeHealth | None
    size: str | None
    location: str | None
    ip_address: str | None
    agent_host: str | None
    agent_port: int | None
    agent_version: str | None
    error_message: str | None
    last_heartbeat_at: str | None
    ready_at: str | None
    warm: bool
    warm_since: str | None
    workspace_count: int
    metrics: NodeMetrics | None
    created_at: str
    updated_at: str

    @classmethod
    def of(cls, node: Node, interval_seconds: float, now: float) -> "NodeOut":
        derived = {
            "health": node.current_health(interval_seconds, now),
            "warm": node.warm_since is not None,
        }
        stored = {name: getattr(node, name) for name in cls.model_fields.keys() - derived}
        return cls(**stored, **derived)


class NodeList(BaseModel):
    nodes: list[NodeOut]


class NodeStatusOut(BaseModel):
    id: str
    status: NodeStatus


def _out(node: Node, deployment: Deployment) -> NodeOut:
    return NodeOut.of(node, deployment.config.node_heartbeat_seconds, deployment.now())


# --- the owner's routes ----------------------------------------------------------------------


@router.get("/api/nodes", response_model=NodeList)
async def index(user: CurrentUser, deployment: DeploymentDep) -> NodeList:
    return NodeList(
        nodes=[_out(node, deployment) for node in await nodes.list_nodes(deployment, user.id)]
    )


@router.post("/api/nodes", status_code=201, response_model=NodeOut)
async def create(
    body: NewNode,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> NodeOut:
    node = await nodes.create_node(
        deployment, user.id, body.provider, name=body.name, size=body.size, location=body.location
    )
    return _out(node, deployment)


@router.get("/api/nodes/{node_id}", response_model=NodeOut)
async def show(
    node_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> NodeOut:
    return _out(await nodes.get_node(deployment, user.id, node_id), deployment)


@router.delete("/api/nodes/{node_id}", status_code=204)
async def delete(
    node_id: str,
    user: CurrentUser,
    deployment: DeploymentDep,
) -> Response:
    await nodes.delete_node(deployment, user.id, node_id)
    return Response(status_code=204)


# --- the node's callbacks --------------------------------------------------------------------


async def node_token(node_id: str, request: Request, deployment: DeploymentDep) -> dict[str, Any]:
    """The claims of the caller's sam:node token, which must be for `node_id`."""
    scheme, _, token = (request.headers.get("authorization") or "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(
            "unauthorized",
            "Node callbacks need `Authorization: Bearer <the node's callback token>`.",
        )
    return await scoped_tokens.verify(
        deployment, token.strip(), scoped_tokens.Audience.NODE, node=node_id
    )


NodeCaller = Annotated[dict[str, Any], Depends(node_token)]


@router.post("/api/nodes/{node_id}/ready", response_model=NodeStatusOut)
async def ready(
    node_id: str,
    body: NodeReady,
    _: NodeCaller,
    deployment: DeploymentDep,
) -> NodeStatusOut:
    node = await nodes.mark_ready(deployment, node_id, body.agent_port, body.version)
    event(log, "node.ready", node_id=node_id, port=body.agent_port, version=body.version)
    await dispatch.on_node_ready(deployment, node_id)
    return NodeStatusOut(id=node.id, status=node.status)


class CertificateRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    csr: Annotated[str, StringConstraints(max_length=origin_ca.MAX_CSR_BYTES)]


class CertificateOut(BaseModel):
    certificate: str


@router.post("/api/nodes/{node_id}/tls-certificate", response_model=CertificateOut)
async def tls_certificate(
    node_id: str,
    body: CertificateRequest,
    _: NodeCaller,
    deployment: DeploymentDep,
) -> CertificateOut:
    return CertificateOut(certificate=await origin_ca.certify_node(deployment, node_id, body.csr))


@router.post(
    "/api/nodes/{node_id}/heartbeat", response_model=Beat, response_model_exclude_none=True
)
async def heartbeat(
    node_id: str,
    body: Heartbeat,
    claims: NodeCaller,
    deployment: DeploymentDep,
) -> Beat:
    metrics = body.model_dump(exclude={"agent_version", "workspaces"})
    node, joined = await nodes.record_heartbeat(deployment, node_id, metrics, body.agent_version)
    await idle.record_activity(deployment, node_id, body.workspaces)
    if joined:
        await dispatch.on_node_ready(deployment, node_id)
    beat = Beat(status=node.status, health=node.health)
    if deployment.now() - float(claims["iat"]) >= RENEW_AFTER_SECONDS:
        beat.callback_token = (await scoped_tokens.mint_node_token(deployment, node_id)).token
        event(log, "node.token_renewed", node_id=node_id)
    return beat
