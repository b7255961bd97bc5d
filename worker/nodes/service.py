"""The node service: a user's nodes in D1, their provisioning, callbacks and teardown.

    create_node(deployment, user_id, provider, ...)  row (pending → creating), bootstrap token,
                                                     cloud-init, provider VM, DNS record
    list_nodes / get_node(deployment, user_id, id)   the owner's only; anyone else's is a 404
    mark_ready(deployment, id, agent_port, version)  creating → running (repeat: idempotent)
    record_heartbeat(deployment, id, beat)           load figures, health = healthy; a first
                                                     beat of a creating node counts as ready
    delete_node(deployment, user_id, id)             the owner's: through the node's
                                                     NodeLifecycle object (destroying), then
    teardown(deployment, id)                         VM + DNS record + row; idempotent
    release_resources(deployment, node)              VM + DNS record only (a node in error)
    holds_unsaved_work(deployment, id) -> bool       a workspace on it is flagged
                                                     needs_attention (worker/workspaces/
                                                     idle.py): no automatic teardown

Warm-pool claims (which node a workspace goes to) are in worker/nodes/pool.py; cron's
sweeps in worker/nodes/sweeps.py; the providers are reached through worker/nodes/provisioning.py.
The `nodes` table is written only here.
"""

import json
import logging
from typing import Any, NamedTuple

from worker.db import GuardedTable, iso
from worker.deployment import Deployment
from worker.errors import Conflict, InvalidTransition, NotFound, SamError
from worker.ids import new_id
from worker.logs import event
from worker.nodes import provisioning
from worker.nodes.model import (
    CLOUD_AGENT_PORT,
    Node,
    Provider,
    lifecycle_stub,
)
from worker.states import Kind, NodeHealth, NodeStatus

log = logging.getLogger("sam.nodes")

NODE_ID_PREFIX = "n"  # ids go into DNS names (`vm-{id}.{domain}`): letters and digits only

_COLUMNS = """id, user_id, name, provider, status, health, size, location, provider_server_id,
    ip_address, error_message, last_heartbeat_at, agent_host, agent_port, agent_version,
    ready_at, dns_record_id, metrics, warm_since, workspace_count, created_at, updated_at"""


class NodeNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("node_not_found", "You have no node with that id.")


def new_node_id() -> str:
    return new_id(NODE_ID_PREFIX)


NODES = GuardedTable("nodes", _COLUMNS, Kind.NODE, Node.from_row, NodeNotFound)

# Any user's node, for callbacks (already scoped by their token), cron and teardown.
find_node = NODES.find
# The caller's node; another user's id is exactly as unknown as a made-up one.
get_node = NODES.owned
# Every user's nodes matching a fixed SQL fragment: for cron and the pool.
nodes_where = NODES.where
# `node` moved to a new status (checked by worker.states, guarded against races).
set_status = NODES.set_status
update_fields = NODES.update


async def list_nodes(deployment: Deployment, user_id: str) -> list[Node]:
    return await nodes_where(deployment, "user_id = ? ORDER BY created_at, id", user_id)


async def fail_node(deployment: Deployment, node: Node, message: str) -> Node:
    """`node` in error with `message` (shown to its owner; never a secret)."""
    return await set_status(deployment, node, NodeStatus.ERROR, error_message=message[:500])


async def mark_ready(
    deployment: Deployment, node_id: str, agent_port: int, version: str | None
) -> Node:
    """The agent is up: creating → running. A repeated ready only refreshes port/version."""
    node = await find_node(deployment, node_id)
    if node is None:
        raise NodeNotFound()
    moment = iso(deployment.now())
    ready = {
        "agent_port": agent_port,
        "agent_version": version or node.agent_version,
        "health": str(NodeHealth.HEALTHY),
        "last_heartbeat_at": moment,
    }
    if node.status != NodeStatus.RUNNING:
        try:
            return await set_status(deployment, node, NodeStatus.RUNNING, ready_at=moment, **ready)
        except InvalidTransition:
            # The agent's first heartbeat and its ready callback can race: losing to the
            # other is no failure. Any other state than running stays refused.
            node = await _found(deployment, node_id)
            if node.status != NodeStatus.RUNNING:
                raise
    await update_fields(deployment, node_id, **ready)
    return await _found(deployment, node_id)


class Beat(NamedTuple):
    node: Node
    # This beat was the agent's first: it moved the node from creating to running.
    joined: bool


async def record_heartbeat(
    deployment: Deployment, node_id: str, metrics: dict[str, Any], version: str | None
) -> Beat:
    """A beat from the node's agent: it is healthy now; its load is kept for display.

    The agent has no separate ready call (docs/protocols/agent-api.md): its first beat,
    sent as soon as it listens, moves a creating node to running on the port we expect.
    """
    node = await find_node(deployment, node_id)
    if node is None:
        raise NodeNotFound()
    joined = node.status == NodeStatus.CREATING
    if joined:
        node = await mark_ready(deployment, node_id, node.agent_port or CLOUD_AGENT_PORT, version)
    elif node.status != NodeStatus.RUNNING:
        raise Conflict(
            "node_not_running",
            f"Node {node_id} is {node.status}; its heartbeats are no longer recorded.",
        )
    await update_fields(
        deployment,
        node_id,
        last_heartbeat_at=iso(deployment.now()),
        health=str(NodeHealth.HEALTHY),
        agent_version=version or node.agent_version,
        metrics=json.dumps(metrics, separators=(",", ":")),
    )
    return Beat(await _found(deployment, node_id), joined)


async def holds_unsaved_work(deployment: Deployment, node_id: str) -> bool:
    """A workspace on the node holds work SAM could not save; only its owner may let it go."""
    row = await (
        deployment.env.DATABASE.prepare(
            "SELECT 1 FROM workspaces WHERE node_id = ? AND needs_attention IS NOT NULL LIMIT 1"
        )
        .bind(node_id)
        .first()
    )
    return bool(row)  # no row: None, or JS null (falsy) where a runtime hands that through


async def record_health(deployment: Deployment, node: Node, health: str) -> None:
    """Cron's judgement of a running node's health, unless a beat has landed meanwhile."""
    await (
        deployment.env.DATABASE.prepare(
            "UPDATE nodes SET health = ? WHERE id = ? AND status = 'running' "
            "AND last_heartbeat_at IS ?"
        )
        .bind(health, node.id, node.last_heartbeat_at)
        .run()
    )


async def mirror_lifecycle(
    deployment: Deployment, node_id: str, seq: int, warm_since: float | None, workspace_count: int
) -> None:
    """The NodeLifecycle object's state, copied for queries; an older write never wins."""
    await (
        deployment.env.DATABASE.prepare(
            "UPDATE nodes SET warm_since = ?, workspace_count = ?, lifecycle_seq = ? "
            "WHERE id = ? AND lifecycle_seq < ?"
        )
        .bind(None if warm_since is None else iso(warm_since), workspace_count, seq, node_id, seq)
        .run()
    )


# --- create and delete ---------------------------------------------------------------------


async def create_node(
    deployment: Deployment,
    user_id: str,
    provider: Provider,
    name: str | None = None,
    size: str | None = None,
    location: str | None = None,
) -> Node:
    """Provision a node for `user_id`; it is `creating` until its agent calls back.

    The row is written before the VM exists, so cron's orphan sweep never takes a VM being
    created for a stranger's. If the provider refuses, the node ends in `error` (nothing
    left behind) and the provider's error is raised.
    """
    provisioning.check_available(deployment, provider)
    node_id = new_node_id()
    pending = await NODES.insert(
        deployment,
        id=node_id,
        user_id=user_id,
        name=name or f"node-{node_id[-6:]}",
        provider=str(provider),
        status=str(NodeStatus.PENDING),
        size=size,
        location=location,
    )
    node = await set_status(deployment, pending, NodeStatus.CREATING)
    event(log, "node.creating", node_id=node_id, user=user_id, provider=provider)
    try:
        placed = await provisioning.provision(deployment, node)
    except SamError as exc:
        failed = await fail_node(deployment, node, f"Provisioning failed: {exc.message}")
        await release_resources(deployment, failed, quiet=True, thorough=True)
        raise
    await update_fields(deployment, node_id, **placed)
    return await _found(deployment, node_id)


async def delete_node(deployment: Deployment, user_id: str, node_id: str) -> None:
    """Delete the caller's node: refused while it holds workspaces; VM and DNS go with it."""
    node = await get_node(deployment, user_id, node_id)
    lifecycle = lifecycle_stub(deployment, node.id)
    # From here on the object refuses claims, and its alarm retries the teardown if what
    # follows fails (the owner sees that failure now; the node is gone later).
    started = await lifecycle.destroy(node.id, deployment.now())
    if not started["destroying"]:
        raise Conflict(
            "node_busy",
            f"Node {node_id} still holds {len(started['workspaces'])} workspace(s). "
            "Stop or delete them first.",
        )
    await teardown(deployment, node.id)
    await lifecycle.destroyed(node.id)


async def teardown(deployment: Deployment, node_id: str) -> None:
    """Delete the node's VM, DNS record and row. Idempotent: a gone node is a no-op."""
    node = await find_node(deployment, node_id)
    if node is None:
        return
    if node.status not in (NodeStatus.STOPPING, NodeStatus.STOPPED):
        node = await set_status(deployment, node, NodeStatus.STOPPING)
    await release_resources(deployment, node)
    await NODES.delete(deployment, node_id)
    event(log, "node.deleted", node_id=node_id, provider=node.provider)


async def release_resources(
    deployment: Deployment, node: Node, quiet: bool = False, thorough: bool = False
) -> None:
    """Delete the node's VM and DNS record (each idempotent); the row stays.

    `quiet`: a failure is logged, not raised (cleaning up after a failed create, where
    the create's own error is what the caller must see; cron retries the rest).
    `thorough`: look for a VM even if none was recorded (see provisioning.release).
    """
    try:
        await provisioning.release(deployment, node, thorough)
    except SamError as exc:
        if not quiet:
            raise
        event(log, "node.release_failed", level=logging.WARNING, node_id=node.id, error=exc.code)
        return
    await update_fields(deployment, node.id, provider_server_id=None, dns_record_id=None)


async def _found(deployment: Deployment, node_id: str) -> Node:
    node = await find_node(deployment, node_id)
    if node is None:
        raise NodeNotFound()
    return node
