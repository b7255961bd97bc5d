"""Cron's workspace jobs (every 5 minutes): each idempotent, each safe to run twice at once.

    time_out_provisioning   pending or creating for longer than
                            SAM_WORKSPACE_PROVISIONING_TIMEOUT_SECONDS (30 min) since the
                            create or restart → error, node claim released
    converge_stuck          pending or creating, untouched for CONVERGE_AFTER_SECONDS:
                            node running → its agent asked and brought in line (a lost
                            dispatch or callback, an edge that died mid-way);
                            no node, or a failed or vanished one → placed again;
                            node still being created → left to it (and its own timeout)
    stop_idle               running and unused for SAM_IDLE_TIMEOUT_SECONDS → stopped with
                            the reason, its unsaved work saved first or the workspace kept
                            and flagged (worker/workspaces/idle.py)

A node's ready callback does the same converging at once (worker/nodes/service.py mark_ready);
this is the safety net when no callback comes. A failure for one workspace is logged and
left for the next run; it never stops the others.
"""

import logging
from typing import Any

from worker.config import ConfigError
from worker.db import iso
from worker.deployment import Deployment
from worker.errors import SamError
from worker.logs import event
from worker.nodes import pool as node_pool
from worker.nodes import service as nodes
from worker.states import NodeStatus
from worker.workspaces import idle, store
from worker.workspaces.dispatch import converge, fail, place

log = logging.getLogger("sam.cron.workspaces")

DEFAULT_PROVISIONING_TIMEOUT_SECONDS = 30 * 60
TIMEOUT_VAR = "SAM_WORKSPACE_PROVISIONING_TIMEOUT_SECONDS"
# Long enough that a create or restart still in flight is never raced by cron.
CONVERGE_AFTER_SECONDS = 2 * 60
WAITING = "status IN ('pending', 'creating')"


def provisioning_timeout_seconds(env: Any) -> float:
    raw = getattr(env, TIMEOUT_VAR, None)
    if raw is None:
        return DEFAULT_PROVISIONING_TIMEOUT_SECONDS
    try:
        value = float(raw)
    except (TypeError, ValueError):
        value = 0.0
    if not value > 0:
        raise ConfigError(f"{TIMEOUT_VAR} must be a positive number of seconds, not {raw!r}")
    return value


async def run(deployment: Deployment) -> dict[str, int]:
    return {
        "workspaces_timed_out": await time_out_provisioning(deployment),
        "workspaces_converged": await converge_stuck(deployment),
        "workspaces_idle_stopped": await idle.stop_idle(deployment),
    }


async def time_out_provisioning(deployment: Deployment) -> int:
    now = deployment.now()
    limit = provisioning_timeout_seconds(deployment.env)
    late = await store.where(deployment, f"{WAITING} AND provisioning_since < ?", iso(now - limit))
    for workspace in late:
        minutes = round(limit / 60)
        await fail(
            deployment,
            workspace,
            f"The workspace was not running within {minutes} minutes. Restart or delete it.",
            "timeout",
        )
        event(log, "workspace.timed_out", level=logging.WARNING, workspace_id=workspace.id)
    return len(late)


async def converge_stuck(deployment: Deployment) -> int:
    now = deployment.now()
    stuck = await store.where(
        deployment, f"{WAITING} AND updated_at < ?", iso(now - CONVERGE_AFTER_SECONDS)
    )
    converged = 0
    for workspace in stuck:
        try:
            converged += await _converge_one(deployment, workspace)
        except SamError as exc:
            event(
                log,
                "cron.workspace_failed",
                level=logging.WARNING,
                workspace_id=workspace.id,
                error=exc.code,
            )
    return converged


async def _converge_one(deployment: Deployment, workspace: Any) -> int:
    node = (
        None if workspace.node_id is None else await nodes.find_node(deployment, workspace.node_id)
    )
    if node is not None and node.status == NodeStatus.CREATING:
        return 0
    if node is not None and node.status == NodeStatus.RUNNING and node.agent_url is not None:
        await converge(deployment, workspace, node)
        return 1
    if workspace.node_id is not None:  # failed, being deleted, or gone
        await node_pool.release(deployment, workspace.node_id, workspace.id)
    event(log, "workspace.replaced", workspace_id=workspace.id, old_node=workspace.node_id)
    await place(deployment, workspace)
    return 1
