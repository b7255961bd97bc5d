"""The warm pool, for the workspaces service: which node a workspace goes to.

    claim_any(deployment, user_id, workspace_id, provider?) -> Node | None
        a node of the user's with room, claimed for the workspace: warm nodes first (their
        teardown is called off), then the busiest running node with room (so the others can
        go warm), then a node still being created; None: provision a new one
    claim(deployment, node_id, workspace_id) -> bool    that node, if it has room
    release(deployment, node_id, workspace_id) -> dict  the workspace left (stopped, deleted,
                                                        failed); the last one out makes it warm
    lifecycle(deployment, node_id) -> dict              the NodeLifecycle snapshot

Claims are decided by the node's NodeLifecycle Durable Object (race-free, capacity
SAM_MAX_WORKSPACES_PER_NODE); D1's `warm_since` / `workspace_count` only order the
candidates. A claim is idempotent per workspace, and so is a release.
"""

from typing import Any

from worker.deployment import Deployment
from worker.nodes import service as nodes
from worker.nodes.model import Node, Provider, lifecycle_stub
from worker.states import NodeHealth, NodeStatus


async def claim(deployment: Deployment, node_id: str, workspace_id: str) -> bool:
    snapshot = await lifecycle_stub(deployment, node_id).try_claim(
        node_id, workspace_id, deployment.now()
    )
    return bool(snapshot["claimed"])


async def release(deployment: Deployment, node_id: str, workspace_id: str) -> dict:
    return await lifecycle_stub(deployment, node_id).release(
        node_id, workspace_id, deployment.now()
    )


async def lifecycle(deployment: Deployment, node_id: str) -> dict:
    return await lifecycle_stub(deployment, node_id).status(node_id)


async def expire(deployment: Deployment, node_id: str) -> dict:
    """Tear the node down if its warm window has passed (cron's safety net to the alarm)."""
    return await lifecycle_stub(deployment, node_id).expire(node_id, deployment.now())


async def candidates(
    deployment: Deployment, user_id: str, provider: Provider | None = None
) -> list[Node]:
    """The user's nodes that may take a workspace, best first."""
    config = deployment.config
    condition = "user_id = ? AND status IN ('running', 'creating')"
    bindings: list[Any] = [user_id]
    if provider is not None:
        condition += " AND provider = ?"
        bindings.append(str(provider))
    found = await nodes.nodes_where(deployment, condition, *bindings)

    def usable(node: Node) -> bool:
        if node.workspace_count >= config.max_workspaces_per_node:
            return False  # a hint only: the object decides, but this saves a call
        if node.status == NodeStatus.CREATING:
            return True
        health = node.current_health(config.node_heartbeat_seconds, deployment.now())
        return health in (None, NodeHealth.HEALTHY)

    def rank(node: Node) -> tuple[int, int, str]:
        if node.status == NodeStatus.CREATING:
            return (2, 0, node.created_at)
        if node.warm_since is not None:
            return (0, 0, node.warm_since)
        return (1, -node.workspace_count, node.created_at)

    return sorted(filter(usable, found), key=rank)


async def claim_any(
    deployment: Deployment,
    user_id: str,
    workspace_id: str,
    provider: Provider | None = None,
) -> Node | None:
    """A node of the user's, claimed for `workspace_id`; None when none has room."""
    for node in await candidates(deployment, user_id, provider):
        if await claim(deployment, node.id, workspace_id):
            return await nodes.find_node(deployment, node.id) or node
    return None
