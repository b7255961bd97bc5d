"""The 5-minute cron: housekeeping that no request triggers."""

import logging
from typing import Any

from worker.db import iso
from worker.deployment import Deployment
from worker.logs import event
from worker.nodes import sweeps as node_sweeps
from worker.workspaces import sweeps as workspace_sweeps

log = logging.getLogger("sam.cron")

ERROR_RETENTION_DAYS = 30
SECONDS_PER_DAY = 24 * 60 * 60


async def run(controller: Any, deployment: Deployment) -> None:
    pruned = await prune_errors(deployment)
    swept = await node_sweeps.run(deployment)
    # After the nodes: a node that timed out above is one its workspaces are moved off.
    placed = await workspace_sweeps.run(deployment)
    event(log, "cron.done", cron=controller.cron, errors_pruned=pruned, **swept, **placed)


async def prune_errors(deployment: Deployment) -> int:
    """Forget reported errors older than the retention window."""
    result = (
        await deployment.env.OBSERVABILITY_DATABASE.prepare(
            "DELETE FROM errors WHERE occurred_at < ?"
        )
        .bind(iso(deployment.now() - ERROR_RETENTION_DAYS * SECONDS_PER_DAY))
        .run()
    )
    return int(result["meta"]["changes"])
