"""Parsers against recorded tool output; the CLI, the Docker Engine and the base image for real.

The fixtures in tests/fixtures/devcontainer/ were recorded from @devcontainers/cli 0.89.0
(`devcontainer up` stdout/stderr) and Docker Engine 20.10 (`docker inspect`).
"""

import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.errors import ContainerError
from agent.process import stderr_tail
from agent.workspaces.containers import (
    LABEL_MANAGED_BY,
    LABEL_NODE,
    LABEL_WORKSPACE,
    MANAGED_BY,
    PROJECT_ROOT,
    DevcontainerCLI,
    DockerEngine,
    find_devcontainer_cli,
    parse_inspect,
    parse_up_output,
    workspace_labels,
)

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "devcontainer"
BASE_IMAGE = "sam-workspace-base:bookworm"
# PID 1 that ends on SIGTERM, as a devcontainer's entrypoint does (a bare `sleep` would not).
SLEEPER = ["bash", "-c", "trap 'exit 0' TERM; sleep 600 & wait"]


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# --- parsers --------------------------------------------------------------------------------


def test_parse_up_success() -> None:
    up = parse_up_output(fixture("up-success.stdout"))
    assert up is not None and up.succeeded
    assert up.container_id is not None and len(up.container_id) == 64
    assert up.remote_user == "sam"
    assert up.remote_workspace_folder == "/workspaces/repo"


def test_parse_up_post_create_failure() -> None:
    up = parse_up_output(fixture("up-postcreate-failed.stdout"))
    assert up is not None and not up.succeeded
    assert up.description == "postCreateCommand from devcontainer.json failed."
    assert up.container_id  # the container exists; a rebuild or delete must remove it
    assert "failing-now" in stderr_tail(fixture("up-postcreate-failed.stderr"))


def test_parse_up_missing_image() -> None:
    up = parse_up_output(fixture("up-no-image.stdout"))
    assert up is not None and up.outcome == "error"
    assert up.container_id is None
    assert "docker pull" in (up.message or "")


def test_parse_up_takes_the_last_json_line_and_ignores_noise() -> None:
    stdout = 'progress\n{"not": "a result"}\n{"outcome":"success","containerId":"c1"}\n\n'
    up = parse_up_output(stdout)
    assert up is not None and up.container_id == "c1"
    assert parse_up_output("no json here\n{broken") is None


def test_parse_inspect_running_and_exited() -> None:
    (running,) = json.loads(fixture("inspect-running.json"))
    (exited,) = json.loads(fixture("inspect-exited.json"))
    first, second = parse_inspect(running), parse_inspect(exited)
    assert first.running and first.status == "running"
    assert not second.running and second.status == "exited"
    assert first.id == second.id
    for info in (first, second):
        assert info.labels[LABEL_WORKSPACE] == "ws-fixture"
        assert info.labels[LABEL_NODE] == "node-fixture"
        assert info.labels[LABEL_MANAGED_BY] == MANAGED_BY


# --- the devcontainer CLI -------------------------------------------------------------------


def test_the_project_pins_the_devcontainer_cli() -> None:
    path = find_devcontainer_cli()
    assert path == str(PROJECT_ROOT / "node_modules" / ".bin" / "devcontainer")
    version = subprocess.run([path, "--version"], capture_output=True, text=True, check=True)
    assert version.stdout.strip() == "0.89.0"


def test_up_argv_labels_every_container_and_never_dirties_the_repo(tmp_path: Path) -> None:
    cli = DevcontainerCLI("devcontainer")
    labels = workspace_labels("ws-1", "node-1")
    argv = cli.up_argv(tmp_path / "repo", labels, override_config=tmp_path / ".sam" / "d.json")
    assert argv[:4] == ["devcontainer", "up", "--workspace-folder", str(tmp_path / "repo")]
    pairs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--id-label"]
    assert pairs == ["sam.workspace=ws-1", "sam.node=node-1", "sam.managed-by=sam-agent"]
    assert argv[argv.index("--override-config") + 1] == str(tmp_path / ".sam" / "d.json")


# --- the Docker Engine (real) ---------------------------------------------------------------


@pytest.fixture
def test_labels() -> Iterator[dict[str, str]]:
    labels = workspace_labels(f"ws-{uuid.uuid4().hex[:8]}", f"test-containers-{os.getpid()}")
    yield labels
    _remove_labelled(labels)


def _remove_labelled(labels: dict[str, str]) -> None:
    filters = [f"--filter=label={name}={value}" for name, value in labels.items()]
    ids = subprocess.run(
        ["docker", "ps", "-aq", *filters], capture_output=True, text=True, check=True
    ).stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", *ids], capture_output=True, check=True)


def _run_container(labels: dict[str, str]) -> str:
    label_args = [f"--label={name}={value}" for name, value in labels.items()]
    done = subprocess.run(
        ["docker", "run", "-d", "--network", "none", *label_args, BASE_IMAGE, *SLEEPER],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"{done.stderr} (run scripts/build-image first)"
    return done.stdout.strip()


async def test_engine_finds_starts_stops_and_removes_by_label(
    test_labels: dict[str, str],
) -> None:
    engine = DockerEngine()
    try:
        await engine.ping()
        assert await engine.find(test_labels) == []
        container_id = _run_container(test_labels)

        (found,) = await engine.find(test_labels)
        assert found.id == container_id and found.running
        assert found.labels[LABEL_MANAGED_BY] == MANAGED_BY
        other_node = {**test_labels, LABEL_NODE: "someone-else"}
        assert await engine.find(other_node) == []

        code, output = await engine.exec(container_id, ["id", "-un"], "sam")
        assert (code, output.strip()) == (0, "sam")

        await engine.stop(container_id)
        stopped = await engine.inspect(container_id)
        assert stopped is not None and not stopped.running and stopped.status == "exited"

        await engine.remove(container_id)
        assert await engine.inspect(container_id) is None
        await engine.remove(container_id)  # already gone is fine
    finally:
        engine.close()


async def test_engine_errors_name_a_next_step(test_labels: dict[str, str]) -> None:
    engine = DockerEngine()
    try:
        with pytest.raises(ContainerError) as failed:
            await engine.stop("no-such-container-" + uuid.uuid4().hex)
        assert "docker info" in failed.value.hint
    finally:
        engine.close()


# --- the base image -------------------------------------------------------------------------


def test_base_image_has_the_user_node_and_python() -> None:
    script = (
        'test "$(id -u):$(id -g)" = 1000:1000 && sudo -n true 2>/dev/null && '
        "git --version && node --version && python3 --version"
    )
    done = subprocess.run(
        ["docker", "run", "--rm", "--network", "none", BASE_IMAGE, "bash", "-c", script],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"{done.stdout}{done.stderr} (run scripts/build-image)"
    # The host's Node (README: 20.19+ or 22.12+) and Debian bookworm's python3.
    node_major = int(done.stdout.split("\nv", 1)[1].split(".")[0])
    assert node_major >= 20 and "Python 3.11" in done.stdout, done.stdout


def test_build_image_second_run_does_nothing() -> None:
    def image_id() -> str:
        inspect = ["docker", "image", "inspect", "--format", "{{.Id}}", BASE_IMAGE]
        return subprocess.run(inspect, capture_output=True, text=True, check=True).stdout

    before = image_id()
    done = subprocess.run(
        [str(PROJECT_ROOT / "scripts" / "build-image")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stderr and "nothing to do" in done.stderr
    assert "debootstrap" not in done.stderr and image_id() == before
