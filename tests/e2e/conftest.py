"""The end-to-end tests' third parties (loopback GitHub, Hetzner that boots real agents,
Cloudflare DNS, a git server), and the session's leak check.

`no_leaks` (autouse, session): when the session ends, no fake Hetzner server and no
container of a node these tests made (each test adds its node ids to `e2e_nodes`) may be
left. What it finds is cleaned up (so the machine is left clean) and then reported as an
error of the session: a leak is a failure, even when every test passed. Containers of
other nodes (another test run on the same Docker Engine) are neither counted nor touched.
"""

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.git_server import GitServer
from tests.fakes.anthropic import ScriptedModel
from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.github import FakeGitHub
from tests.fakes.hetzner import FakeHetzner
from tests.support.artifact import agent_artifact

MANAGED_LABEL = "sam.managed-by"
NODE_LABEL = "sam.node"
LOGINS = ("alice", "bob")


def managed_containers() -> dict[str, str]:
    """id → labels of every container (running or not) an agent made."""
    listed = subprocess.run(
        [
            "docker",
            "ps",
            "--all",
            "--no-trunc",
            "--filter",
            f"label={MANAGED_LABEL}",
            "--format",
            "{{.ID}} {{.Labels}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(line.split(" ", 1) for line in listed.splitlines() if line.strip())


@pytest.fixture(scope="session")
def artifact() -> Path:
    return agent_artifact()


@pytest.fixture(scope="session")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        for login in LOGINS:
            fake.add_account(login, name=login.title(), email=f"{login}@example.com")
        yield fake


@pytest.fixture(scope="session")
def hetzner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeHetzner]:
    with FakeHetzner(boot=True, boot_root=tmp_path_factory.mktemp("vms")) as fake:
        yield fake


@pytest.fixture(scope="session")
def anthropic() -> Iterator[ScriptedModel]:
    """The Anthropic API, as far as checking a key before it is saved (any key is good)."""
    with ScriptedModel() as model:
        yield model


@pytest.fixture(scope="session")
def dns() -> Iterator[FakeCloudflareDns]:
    with FakeCloudflareDns() as fake:
        yield fake


@pytest.fixture(scope="session")
def git(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    with GitServer(tmp_path_factory.mktemp("git")) as server:
        yield server


def node_of(labels: str) -> str | None:
    """The `sam.node` value in docker's `a=b,c=d` label list."""
    for pair in labels.split(","):
        name, _, value = pair.partition("=")
        if name == NODE_LABEL:
            return value
    return None


@pytest.fixture(scope="session")
def e2e_nodes() -> set[str]:
    """The ids of the nodes the e2e tests made; each test adds its own."""
    return set()


@pytest.fixture(scope="session", autouse=True)
def no_leaks(hetzner: FakeHetzner, e2e_nodes: set[str]) -> Iterator[None]:
    yield
    servers = hetzner.all_servers()
    ours = e2e_nodes | {s.labels.get("sam-node") for s in servers}
    containers = {k: v for k, v in managed_containers().items() if node_of(v) in ours}
    for server in servers:
        if server.boot is not None:
            server.boot.shut_down()
    if containers:
        subprocess.run(["docker", "rm", "--force", *containers], capture_output=True)
    problems = [f"fake Hetzner server {s.id} {s.name} labels={s.labels}" for s in servers]
    problems += [f"container {cid[:12]} {labels}" for cid, labels in containers.items()]
    assert not problems, "outlived the tests (now removed):\n  " + "\n  ".join(problems)
