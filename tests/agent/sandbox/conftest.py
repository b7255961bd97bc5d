"""Workspaces of a real agent (`python -m agent`, root here as on a VM) on the real Docker
Engine, probed from inside their containers.

Each test has its own node id; its containers and networks carry it as a label, and the
leak check removes (and fails on) whatever a test leaves behind: never anything of another
engineer's or test's.
"""

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.agent import own_node
from tests.support.agent import AgentProcess
from tests.support.wait import wait_for

BASE_IMAGE = "sam-workspace-base:bookworm"
READY_TIMEOUT_SECONDS = 90.0
PROBE_TIMEOUT_SECONDS = 60


# The test's own node, its control-plane double and its leak check (tests/agent/own_node.py).
node_id = own_node.node_id
control_plane = own_node.control_plane
leak_check = own_node.leak_check


@pytest.fixture
def docker_agent(agent_factory: Callable[..., AgentProcess]) -> AgentProcess:
    return agent_factory(backend="docker", extra_env={"SAM_BASE_IMAGE": BASE_IMAGE})


def create(agent: AgentProcess, workspace_id: str, repo: Path, **spec: Any) -> None:
    with agent.client() as client:
        body = {"id": workspace_id, "repository": str(repo), **spec}
        answer = client.post("/workspaces", json=body)
        assert answer.status_code == 202, answer.text


def settled(agent: AgentProcess, workspace_id: str) -> dict[str, Any]:
    """The workspace once provisioning has ended (running or error)."""

    def done() -> dict[str, Any] | None:
        with agent.client() as client:
            workspace = client.get(f"/workspaces/{workspace_id}").json()
        return workspace if workspace["state"] in ("running", "error") else None

    return wait_for(done, f"workspace {workspace_id} to settle", READY_TIMEOUT_SECONDS)


def running(agent: AgentProcess, workspace_id: str) -> dict[str, Any]:
    workspace = settled(agent, workspace_id)
    assert workspace["state"] == "running", workspace["error"]
    return workspace


def delete(agent: AgentProcess, workspace_id: str) -> None:
    with agent.client() as client:
        assert client.delete(f"/workspaces/{workspace_id}").status_code == 200


def in_container(
    container: str, script: str, *args: str, user: str = "sam", stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """python3 `script` in the container as `user`; secrets go on stdin, never in argv."""
    return subprocess.run(
        ["docker", "exec", "-i", "-u", user, container, "python3", "-c", script, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_SECONDS,
    )
