"""The 5-minute cron: housekeeping that no request triggers."""

import logging
from typing import Any

from worker.logs import event
from worker.nodes import sweeps as node_sweeps
from worker.workspaces import sweeps as workspace_sweeps

log = logging.getLogger("sam.cron")

ERROR_RETENTION_DAYS = 30


async def run(controller: Any, env: Any, ctx: Any) -> None:
    pruned = await prune_errors(env)
    swept = await node_sweeps.run(env)
    # After the nodes: a node that timed out above is one its workspaces are moved off.
    placed = await workspace_sweeps.run(env)
    event(log, "cron.done", cron=controller.cron, errors_pruned=pruned, **swept, **placed)


async def prune_errors(env: Any) -> int:
    """Forget reported errors older than the retention window."""
    result = (
        await env.OBSERVABILITY_DATABASE.prepare(
            "DELETE FROM errors WHERE occurred_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?)"
        )
        .bind(f"-{ERROR_RETENTION_DAYS} days")
        .run()
    )
    return int(result["meta"]["changes"])
