"""A repository asking for each refused devcontainer property, through the real agent, the
devcontainer CLI and Docker: refused before anything runs (the host file stays as it was),
the boot log and the workspace's error naming the property; and allowed when the node's
owner trusts the repository (`trusted_devcontainer`)."""

import json
import subprocess
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from agent.workspaces.containers import LABEL_NODE
from tests.agent.sandbox.conftest import BASE_IMAGE, create, delete, settled
from tests.fixtures.repos import git, make_repo
from tests.support.agent import AgentProcess
from tests.support.docker_objects import labelled

HOST_FILE_TEXT = "the node's own file\n"


@dataclass(frozen=True)
class Case:
    named: str  # what the refusal must name
    # (repository, host file) -> the repository asking for it
    make: Callable[[Path, Path], Path]
    # the container's `docker inspect` and the host file, when trusted
    trusted_check: Callable[[dict[str, Any], Path], None] | None


def with_config(**config: Any) -> Callable[[Path, Path], Path]:
    def make(parent: Path, host_file: Path) -> Path:
        text = json.loads(json.dumps(config).replace("HOST_FILE", str(host_file)))
        return make_repo(parent, "repo", {"image": BASE_IMAGE, **text})

    return make


def compose(parent: Path, host_file: Path) -> Path:
    files = {
        ".devcontainer/compose.yml": (
            f"services:\n  app:\n    image: {BASE_IMAGE}\n    privileged: true\n"
            "    command: sleep infinity\n"
        ),
        ".devcontainer/devcontainer.json": json.dumps(
            {"dockerComposeFile": "compose.yml", "service": "app", "workspaceFolder": "/w"}
        ),
    }
    return make_repo(parent, "repo", files=files)


def linked_config(parent: Path, host_file: Path) -> Path:
    repo = make_repo(parent, "repo")
    outside = parent / "host-devcontainer.json"
    config = {"image": BASE_IMAGE, "initializeCommand": f"sh -c 'echo pwned > {host_file}'"}
    outside.write_text(json.dumps(config))
    (repo / ".devcontainer.json").symlink_to(outside)
    git(repo, "add", ".devcontainer.json")
    git(repo, "commit", "--quiet", "--message", "link")
    return repo


def host_file_overwritten(_inspect: dict[str, Any], host_file: Path) -> None:
    assert host_file.read_text() == "pwned\n"  # the owner trusted it: it ran on the node


CASES = {
    "initializeCommand": Case(
        "initializeCommand",
        with_config(initializeCommand="sh -c 'echo pwned > HOST_FILE'"),
        host_file_overwritten,
    ),
    "compose-privileged": Case("dockerComposeFile", compose, None),
    "host-mount": Case(
        "mounts",
        with_config(mounts=["source=HOST_FILE,target=/host-file,type=bind"]),
        lambda inspect, host_file: _assert(
            any(m["Source"] == str(host_file) for m in inspect["Mounts"])
        ),
    ),
    "network-host": Case(
        "runArgs --network host",
        with_config(runArgs=["--network", "host"]),
        lambda inspect, _: _assert(inspect["HostConfig"]["NetworkMode"] == "host"),
    ),
    "pid-host": Case(
        "runArgs --pid host",
        with_config(runArgs=["--pid", "host"]),
        lambda inspect, _: _assert(inspect["HostConfig"]["PidMode"] == "host"),
    ),
    "cap-sys-admin": Case(
        "capAdd",
        with_config(capAdd=["SYS_ADMIN"]),
        lambda inspect, _: _assert("CAP_SYS_ADMIN" in inspect["HostConfig"]["CapAdd"]),
    ),
    "linked-config": Case(".devcontainer.json", linked_config, host_file_overwritten),
}


def _assert(condition: bool) -> None:
    assert condition


def docker_inspect(container: str) -> dict[str, Any]:
    done = subprocess.run(["docker", "inspect", container], capture_output=True, text=True)
    return json.loads(done.stdout)[0]


@pytest.fixture
def host_file(tmp_path: Path) -> Path:
    path = tmp_path / "node-file.txt"
    path.write_text(HOST_FILE_TEXT)
    return path


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_refused_by_default_naming_the_property(
    docker_agent: AgentProcess, tmp_path: Path, host_file: Path, case: Case
) -> None:
    create(docker_agent, "ws-refused", case.make(tmp_path / "src", host_file))
    try:
        workspace = settled(docker_agent, "ws-refused")
        assert workspace["state"] == "error"
        assert case.named in workspace["error"], workspace["error"]
        assert "trusted_devcontainer" in workspace["error"]  # what to do next
        with docker_agent.client() as client:
            entries = client.get("/workspaces/ws-refused/boot-log").json()["entries"]
        failed = [e for e in entries if e["status"] == "failed"]
        assert [e["step"] for e in failed] == ["devcontainer policy"]
        assert case.named in failed[0]["message"]
        assert workspace["container_id"] is None  # nothing was brought up
        assert host_file.read_text() == HOST_FILE_TEXT
    finally:
        delete(docker_agent, "ws-refused")


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_allowed_when_the_owner_trusts_the_repository(
    docker_agent: AgentProcess, tmp_path: Path, host_file: Path, case: Case
) -> None:
    repo = case.make(tmp_path / "src", host_file)
    create(docker_agent, "ws-trusted", repo, trusted_devcontainer=True)
    try:
        workspace = settled(docker_agent, "ws-trusted")
        with docker_agent.client() as client:
            entries = client.get("/workspaces/ws-trusted/boot-log").json()["entries"]
        config_step = next(e for e in entries if e["step"] == "devcontainer config")
        assert config_step["status"] == "succeeded" and "trusted" in config_step["message"]
        if case.trusted_check is None:
            # A compose configuration needs Docker Compose, which this machine lacks: the
            # policy let it through, and the CLI is what stops.
            assert workspace["state"] == "error" and "policy" not in (workspace["error"] or "")
            return
        assert workspace["state"] == "running", workspace["error"]
        assert workspace["trusted_devcontainer"] is True
        case.trusted_check(docker_inspect(workspace["container_id"]), host_file)
    finally:
        delete(docker_agent, "ws-trusted")


def test_privileges_from_the_images_metadata_label_are_refused_after_up(
    docker_agent: AgentProcess, tmp_path: Path, node_id: str
) -> None:
    """The repository's file asks for nothing, but its image's devcontainer.metadata label
    (which the CLI merges in) asks for privileged: what the container really got is checked
    after `up`, and the container removed."""
    tag = f"sam-sandbox-test-privileged:{uuid.uuid4().hex[:12]}"
    made = subprocess.run(["docker", "create", BASE_IMAGE, "true"], capture_output=True, text=True)
    label = f"LABEL devcontainer.metadata={json.dumps(json.dumps([{'privileged': True}]))}"
    try:
        commit = ["docker", "commit", "--change", label, made.stdout.strip(), tag]
        subprocess.run(commit, check=True, capture_output=True)
    finally:
        subprocess.run(["docker", "rm", made.stdout.strip()], capture_output=True)
    try:
        create(docker_agent, "ws-label", make_repo(tmp_path, "repo", {"image": tag}))
        workspace = settled(docker_agent, "ws-label")
        assert workspace["state"] == "error"
        assert "privileged" in workspace["error"] and "devcontainer.metadata" in workspace["error"]
        assert labelled("containers", f"{LABEL_NODE}={node_id}") == []  # the container is gone
        delete(docker_agent, "ws-label")
    finally:
        subprocess.run(["docker", "rmi", tag], capture_output=True)
