"""Cron's node jobs (every 5 minutes): each idempotent, each safe to run twice at once.

    time_out_provisioning   creating longer than SAM_NODE_PROVISIONING_TIMEOUT_SECONDS
                            → error, and its VM and DNS record deleted
    judge_health            running nodes: healthy / stale / unhealthy written into D1
    sweep_warm              warm past SAM_WARM_TIMEOUT_SECONDS → the node's NodeLifecycle
                            object tears it down (its alarm's job; this is the safety net)
    finish_teardowns        stopping for too long → torn down again; error nodes still
                            holding a VM or DNS record → released
    delete_orphans          VMs labelled as SAM's that D1 does not know → deleted

A provider failing for one node is logged and left for the next run; it never stops the
other nodes or jobs.
"""

import logging
from typing import Any

from worker.db import iso
from worker.deployment import Deployment
from worker.errors import SamError
from worker.logs import event
from worker.nodes import pool as node_pool
from worker.nodes import provisioning
from worker.nodes import service as nodes
from worker.states import NodeStatus

log = logging.getLogger("sam.cron.nodes")

# A delete that has not finished in this long is retried by cron.
STUCK_STOPPING_SECONDS = 10 * 60


async def run(deployment: Deployment) -> dict[str, int]:
    return {
        "nodes_timed_out": await time_out_provisioning(deployment),
        "nodes_judged": await judge_health(deployment),
        "nodes_expired": await sweep_warm(deployment),
        "nodes_finished": await finish_teardowns(deployment),
        "orphans_deleted": await delete_orphans(deployment),
    }


async def time_out_provisioning(deployment: Deployment) -> int:
    now = deployment.now()
    limit = deployment.config.node_provisioning_timeout_seconds
    late = await nodes.nodes_where(
        deployment, "status IN ('pending', 'creating') AND created_at < ?", iso(now - limit)
    )
    for node in late:
        minutes = round(limit / 60)
        try:
            failed = await nodes.fail_node(
                deployment,
                node,
                f"The node's agent did not call back within {minutes} minutes of provisioning.",
            )
        except SamError:  # it moved on meanwhile (ready, or deleted)
            continue
        event(log, "node.timed_out", level=logging.WARNING, node_id=node.id)
        await _quietly("release", node.id, nodes.release_resources(deployment, failed))
    return len(late)


async def judge_health(deployment: Deployment) -> int:
    now = deployment.now()
    interval = deployment.config.node_heartbeat_seconds
    changed = 0
    for node in await nodes.nodes_where(deployment, "status = 'running'"):
        health = node.current_health(interval, now)
        if health is not None and health != node.health:
            await nodes.record_health(deployment, node, health)
            event(log, "node.health", node_id=node.id, health=health)
            changed += 1
    return changed


async def sweep_warm(deployment: Deployment) -> int:
    now = deployment.now()
    window = deployment.config.warm_timeout_seconds
    expired = 0
    for node in await nodes.nodes_where(
        deployment, "warm_since IS NOT NULL AND warm_since < ?", iso(now - window)
    ):
        snapshot = await _quietly("expire", node.id, node_pool.expire(deployment, node.id))
        expired += bool(snapshot and snapshot["torn_down"])
    return expired


async def finish_teardowns(deployment: Deployment) -> int:
    now = deployment.now()
    stuck = await nodes.nodes_where(
        deployment, "status = 'stopping' AND updated_at < ?", iso(now - STUCK_STOPPING_SECONDS)
    )
    holding = await nodes.nodes_where(
        deployment,
        "status = ? AND (provider_server_id IS NOT NULL OR dns_record_id IS NOT NULL)",
        str(NodeStatus.ERROR),
    )
    for node in stuck:
        await _quietly("teardown", node.id, nodes.teardown(deployment, node.id))
    for node in holding:
        await _quietly("release", node.id, nodes.release_resources(deployment, node))
    return len(stuck) + len(holding)


async def delete_orphans(deployment: Deployment) -> int:
    # Listed before D1 is read: a node's row is written before its VM is created, so a VM
    # in this list whose row is missing below is not one being created right now.
    managed = await provisioning.managed_servers(deployment)
    if not managed:
        return 0
    known = {node.id for node in await nodes.nodes_where(deployment, "1 = 1")}
    deleted = 0
    for server in managed:
        if server.node_id in known:
            continue
        event(
            log,
            "node.orphan",
            level=logging.WARNING,
            provider=server.provider,
            user=server.user_id,
            node_id=server.node_id,
        )
        if await _quietly(
            "orphan", server.node_id, provisioning.delete_managed(deployment, server)
        ):
            deleted += 1
    return deleted


async def _quietly(job: str, node_id: str | None, work: Any) -> Any:
    """`await work`; a provider's refusal is logged and left for the next run."""
    try:
        return (await work) or True
    except SamError as exc:
        event(log, f"cron.{job}_failed", level=logging.WARNING, node_id=node_id, error=exc.code)
        return None
