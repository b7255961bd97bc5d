"""A workspace provisioned on a real agent, as the agent benchmarks make theirs.

    seconds = provision(agent, control_plane, "ws-1", repo)   POST /workspaces → ready callback

Any answer that is not a success raises BenchError: a figure from a failed step would mean
nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.agent import AgentProcess
from tests.support.control_plane import ControlPlaneDouble

READY_TIMEOUT_SECONDS = 120.0


class BenchError(RuntimeError):
    """An answer that was not a success: the figures would mean nothing."""


def provision(
    agent: AgentProcess, control_plane: ControlPlaneDouble, workspace_id: str, repository: Path
) -> float:
    """POST /workspaces; the seconds until the double received the ready callback."""
    with agent.client() as client:
        began = time.monotonic()
        made = client.post("/workspaces", json={"id": workspace_id, "repository": str(repository)})
    if made.status_code != 202:
        raise BenchError(f"POST /workspaces answered {made.status_code}: {made.text}")
    outcome = control_plane.wait_for(
        target=workspace_id,
        where=lambda c: c.kind in ("ready", "provisioning-failed"),
        timeout=READY_TIMEOUT_SECONDS,
    )[0]
    if outcome.kind != "ready":
        raise BenchError(f"the agent could not provision {workspace_id}: {outcome.body}")
    return outcome.received_at - began
