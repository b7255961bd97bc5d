"""Fixtures shared by every agent test.

control_plane   a running ControlPlaneDouble (JWKS, token minting, recorded callbacks)
agent_token     a valid sam:agent token for the double's node
agent_factory   agent_factory(backend="docker", extra_env=None, state_dir=None) starts a
                real `python -m agent` subprocess; all are stopped after the test
agent           one running agent on the host backend (no Docker needed), for tests of
                the HTTP surface; use agent_factory(backend="docker") for workspaces
container       the id of a running container of the workspace base image, one per test
                module (skips when the image is not built)
"""

import ctypes
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from agent.reaper import PR_SET_CHILD_SUBREAPER
from tests.support.agent import AgentProcess, start_agent
from tests.support.control_plane import ControlPlaneDouble


@pytest.fixture(autouse=True)
def not_a_subreaper_after_the_test() -> Iterator[None]:
    """A test that execs shells through runc in this process makes it a subreaper, as the
    agent is. It must not stay one: the shells of an agent killed in a later test would
    come here and, never reaped, hold their container's pid namespace open (so that
    `docker stop` hangs). An agent's own parent is systemd, which reaps them."""
    yield
    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


@pytest.fixture
def control_plane() -> Iterator[ControlPlaneDouble]:
    with ControlPlaneDouble() as double:
        yield double


@pytest.fixture
def agent_token(control_plane: ControlPlaneDouble) -> str:
    return control_plane.agent_token()


AgentFactory = Callable[..., AgentProcess]


@pytest.fixture
def agent_factory(control_plane: ControlPlaneDouble, tmp_path: Path) -> Iterator[AgentFactory]:
    started: list[AgentProcess] = []

    def factory(
        backend: str = "docker",
        extra_env: dict[str, str] | None = None,
        state_dir: Path | None = None,
    ) -> AgentProcess:
        directory = state_dir or tmp_path / f"agent-state-{len(started)}"
        agent = start_agent(control_plane, directory, backend=backend, extra_env=extra_env)
        started.append(agent)
        return agent

    yield factory
    for agent in started:
        if agent.running:
            agent.stop()


@pytest.fixture
def agent(agent_factory: AgentFactory) -> AgentProcess:
    return agent_factory(backend="host")


BASE_IMAGE = "sam-workspace-base:bookworm"


@pytest.fixture(scope="module")
def container() -> Iterator[str]:
    inspect = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True)
    if inspect.returncode != 0:
        pytest.skip(f"{BASE_IMAGE} is not built (scripts/build-image builds it)")
    run = subprocess.run(
        ["docker", "run", "-d", "--rm", "--network", "none", BASE_IMAGE, "sleep", "infinity"],
        capture_output=True,
        text=True,
        check=True,
    )
    container_id = run.stdout.strip()
    yield container_id
    subprocess.run(["docker", "rm", "-f", container_id], capture_output=True)
