"""WorkspaceManager against the real Docker Engine, devcontainer CLI and git.

The reporter is the agent's real ControlPlane client talking to the loopback control-plane
double, so boot-log, ready and provisioning-failed callbacks are checked on the wire. Each
test gets its own node id; every container carries it as a label, and the `leak_check`
fixture removes (and fails on) anything a test leaves behind.
"""

import asyncio
import dataclasses
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest

from agent.config import AgentConfig
from agent.control_plane import ControlPlane, new_session
from agent.errors import (
    ConfigError,
    InvalidTransition,
    InvalidWorkspaceSpec,
    WorkspaceExists,
    WorkspaceNotFound,
    WorkspaceNotRunning,
)
from agent.persistence import Store
from agent.shell import ShellCommand
from agent.workspaces.boot_log import MAX_DETAIL_CHARS, BootLog, StepStatus
from agent.workspaces.containers import LABEL_NODE
from agent.workspaces.manager import (
    ALLOWED_TRANSITIONS,
    WorkspaceManager,
    WorkspaceState,
    check_transition,
)
from agent.workspaces.sandbox import network_names
from tests.agent import own_node
from tests.fixtures.repos import git, make_repo
from tests.support.agent import AgentProcess
from tests.support.control_plane import INITIAL_CALLBACK_TOKEN, ControlPlaneDouble
from tests.support.docker_objects import labelled
from tests.support.wait import eventually

BASE_IMAGE = "sam-workspace-base:bookworm"
READY_TIMEOUT_SECONDS = 60
DEVCONTAINER = {
    "image": BASE_IMAGE,
    "containerEnv": {"SAM_TEST_GREETING": "hello-from-containerEnv"},
    "postCreateCommand": "touch $HOME/.post-create-ran",
}
PROVISION_STEPS = ["clone", "devcontainer config", "devcontainer up", "post-create", "ready"]


# --- fixtures -------------------------------------------------------------------------------


# The test's own node, its control-plane double and its leak check (tests/agent/own_node.py).
node_id = own_node.node_id
control_plane = own_node.control_plane
leak_check = own_node.leak_check


@pytest.fixture(scope="session", autouse=True)
def base_image() -> None:
    """The suite needs the base image; it fails (never skips) without it."""
    done = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True)
    assert done.returncode == 0, f"{BASE_IMAGE} is missing: run scripts/build-image"


def _containers(node_id: str) -> list[str]:
    return labelled("containers", f"{LABEL_NODE}={node_id}")


def make_config(control_plane: ControlPlaneDouble, state_dir: Path, **env: str) -> AgentConfig:
    token_file = state_dir / "callback-token"
    token_file.parent.mkdir(parents=True, exist_ok=True)
    token_file.write_text(INITIAL_CALLBACK_TOKEN + "\n")
    return AgentConfig.from_environ(
        {
            **control_plane.agent_env(),
            "SAM_STATE_DIR": str(state_dir),
            "SAM_CALLBACK_TOKEN_FILE": str(token_file),
            "SAM_BASE_IMAGE": BASE_IMAGE,
            **env,
        }
    )


@pytest.fixture
def config(control_plane: ControlPlaneDouble, tmp_path: Path) -> AgentConfig:
    return make_config(control_plane, tmp_path / "state")


@pytest.fixture
async def reporter(config: AgentConfig) -> AsyncIterator[ControlPlane]:
    session = new_session()
    control_plane = ControlPlane(config, session, retry_base_seconds=0.05)
    yield control_plane
    await control_plane.close()
    await session.close()


@pytest.fixture
async def manager(config: AgentConfig, reporter: ControlPlane) -> AsyncIterator[WorkspaceManager]:
    store = Store(config.state_dir / "agent.db")
    workspaces = WorkspaceManager(config, store, reporter)
    await workspaces.start()
    yield workspaces
    for record in workspaces.list():
        await workspaces.delete(record["id"])
    await workspaces.close()
    store.close()


async def provisioned(manager: WorkspaceManager, workspace_id: str) -> dict[str, Any]:
    """Follow the boot log until provisioning ends; the workspace afterwards."""
    async with asyncio.timeout(READY_TIMEOUT_SECONDS):
        async for _entry in manager.boot_log(workspace_id).subscribe():
            pass
    return manager.get(workspace_id)


def run_shell(command: ShellCommand, script: str) -> subprocess.CompletedProcess[str]:
    """The terminal's command without a TTY, with a script for bash (in its container
    through `docker exec`, with the same user, folder and environment)."""
    argv, cwd = [*command.argv, "-c", script], command.cwd
    if command.container is not None:
        options = ["-u", command.user or "", "-w", command.cwd or ""]
        options += [f"--env={name}={value}" for name, value in command.env.items()]
        argv, cwd = ["docker", "exec", *options, command.container, *argv], None
    return subprocess.run(
        argv,
        env=command.child_env(os.environ),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=30,
    )


def steps(entries: list[dict[str, Any]]) -> list[str]:
    """Step names in order, each once."""
    seen: list[str] = []
    for entry in entries:
        if entry["step"] not in seen:
            seen.append(entry["step"])
    return seen


# --- provisioning ---------------------------------------------------------------------------


async def test_repository_with_devcontainer_comes_up_with_env_and_post_create(
    manager: WorkspaceManager,
    control_plane: ControlPlaneDouble,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A devcontainer.json can read the CLI's environment; the agent's must not reach it.
    monkeypatch.setenv("SAM_TEST_SECRET", "hunter2")
    leaky = {**DEVCONTAINER}
    leaky["containerEnv"] = {**DEVCONTAINER["containerEnv"], "LEAK": "${localEnv:SAM_TEST_SECRET}"}
    # remoteEnv is for the tools' processes (terminals), not the container's.
    leaky["remoteEnv"] = {"SAM_REMOTE": "${containerEnv:SAM_TEST_GREETING}-and-remote"}
    repo = make_repo(tmp_path, "with-config", leaky, files={"hello.txt": "hi\n"})
    created = await manager.create({"id": "ws-config", "repository": str(repo)})
    assert created["state"] in ("pending", "creating")

    workspace = await provisioned(manager, "ws-config")
    assert workspace["state"] == "running", workspace["error"]
    assert workspace["remote_user"] == "sam"
    assert workspace["remote_folder"] == "/workspaces/with-config"
    assert workspace["remote_env"] == {"SAM_REMOTE": "hello-from-containerEnv-and-remote"}

    shell = await manager.shell_command("ws-config")
    assert (shell.container, shell.user) == (workspace["container_id"], "sam")
    assert (shell.argv, shell.cwd) == (["bash", "-l"], "/workspaces/with-config")
    assert shell.env["TERM"] == "xterm-256color"
    script = (
        'echo "pwd=$PWD"; cat hello.txt; echo "env=$SAM_TEST_GREETING"; '
        'test -f "$HOME/.post-create-ran" && echo post-create=yes; '
        'touch written-by-shell && echo writable=yes; echo "term=$TERM"; id -un; '
        'echo "leak=$LEAK"; echo "remote=$SAM_REMOTE"'
    )
    done = run_shell(shell, script)
    assert done.returncode == 0, done.stderr
    for expected in (
        "pwd=/workspaces/with-config",
        "hi",
        "env=hello-from-containerEnv",
        "post-create=yes",
        "writable=yes",
        "term=xterm-256color",
        "sam",
        "leak=",
        "remote=hello-from-containerEnv-and-remote",
    ):
        assert expected in done.stdout.splitlines()
    # The user's tree is not dirtied by SAM: only what the shell wrote.
    assert (repo.parent / "with-config").exists()
    checkout = Path(workspace["directory"])
    assert sorted(p.name for p in checkout.iterdir()) == [
        ".devcontainer",
        ".git",
        "hello.txt",
        "written-by-shell",
    ]

    entries = manager.boot_log("ws-config").entries()
    assert steps(entries) == PROVISION_STEPS
    assert all(entry["status"] != "failed" for entry in entries)
    assert [e["status"] for e in entries if e["step"] == "post-create"] == [
        "started",
        "succeeded",
    ]
    # The same entries reached the control plane, in order, then the ready callback.
    (ready,) = await control_plane.wait_for_async("ready", target="ws-config")
    assert ready.body["container_id"] == workspace["container_id"]
    assert ready.body["remote_user"] == "sam"
    posted = [c.body for c in control_plane.callbacks("boot-log", target="ws-config")]
    assert posted == entries
    for entry in entries:
        assert set(entry) == {"step", "status", "message", "detail", "timestamp"}
        assert entry["timestamp"].endswith("Z")


async def test_repository_without_devcontainer_gets_the_default_outside_the_tree(
    manager: WorkspaceManager, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, "plain", files={"main.py": "print('hi')\n"}, branches=("dev",))
    await manager.create({"id": "ws-plain", "repository": str(repo), "branch": "dev"})
    workspace = await provisioned(manager, "ws-plain")
    assert workspace["state"] == "running", workspace["error"]
    assert workspace["branch"] == "dev"

    done = run_shell(await manager.shell_command("ws-plain"), "ls; git branch --show-current")
    assert done.stdout.split() == ["main.py", "dev"], done.stderr

    checkout = Path(workspace["directory"])
    status = subprocess.run(
        ["git", "-c", "safe.directory=*", "status", "--porcelain"],
        cwd=checkout,
        capture_output=True,
        text=True,
    )
    assert status.stdout == ""  # the default configuration lives outside the checkout
    default = json.loads((checkout.parent / ".sam" / "devcontainer.json").read_text())
    assert default["image"] == BASE_IMAGE
    network, _bridge = network_names(manager.config.node_id, "ws-plain")
    assert default["runArgs"] == [
        "--network",
        network,
        "--cap-drop",
        "NET_RAW",
        "--cap-drop",
        "MKNOD",
    ]
    entries = manager.boot_log("ws-plain").entries()
    assert steps(entries) == PROVISION_STEPS
    config_entry = next(e for e in entries if e["step"] == "devcontainer config")
    assert "default" in config_entry["message"]


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"repository": "--upload-pack=touch /tmp/pwned"}, "repository"),
        ({"repository": "https://github.com/x/y.git", "branch": "main; rm -rf /"}, "branch"),
        ({"repository": "https://github.com/x/y.git", "branch": "$(id)"}, "branch"),
        ({"repository": "https://github.com/x/y.git", "branch": "--upload-pack=x"}, "branch"),
        ({"repository": "https://github.com/`id`/y.git"}, "repository"),
        ({"repository": "/nonexistent/path/to/repo"}, "repository"),
        ({"repository": "https://github.com/x/y.git", "id": "../escape"}, "id"),
    ],
)
async def test_bad_input_is_refused_before_anything_runs(
    manager: WorkspaceManager, config: AgentConfig, node_id: str, spec: dict, field: str
) -> None:
    children_before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(InvalidWorkspaceSpec) as refused:
        await manager.create({"id": "ws-bad", **spec})
    assert refused.value.field == field
    assert refused.value.message.startswith(f"{field}: ")
    assert manager.list() == []
    assert not (config.state_dir / "workspaces" / "ws-bad").exists()
    assert list((config.state_dir / "workspaces").iterdir()) == []
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= children_before
    assert not Path("/tmp/pwned").exists()
    assert _containers(node_id) == []


async def test_duplicate_ids_are_refused(manager: WorkspaceManager, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "dup")
    await manager.create({"id": "ws-dup", "repository": str(repo)})
    with pytest.raises(WorkspaceExists):
        await manager.create({"id": "ws-dup", "repository": str(repo)})
    await provisioned(manager, "ws-dup")


async def test_failing_post_create_reports_the_step_stderr_and_next_step(
    manager: WorkspaceManager, control_plane: ControlPlaneDouble, tmp_path: Path
) -> None:
    failing = {**DEVCONTAINER, "postCreateCommand": "echo cannot-install-deps >&2; exit 7"}
    repo = make_repo(tmp_path, "broken", failing)
    await manager.create({"id": "ws-broken", "repository": str(repo)})
    workspace = await provisioned(manager, "ws-broken")
    assert workspace["state"] == "error"
    assert "Next:" in workspace["error"]

    last = manager.boot_log("ws-broken").entries()[-1]
    assert (last["step"], last["status"]) == ("post-create", "failed")
    assert "cannot-install-deps" in last["detail"]
    assert "rebuild" in last["message"]
    (failed,) = await control_plane.wait_for_async("provisioning-failed", target="ws-broken")
    assert failed.body["step"] == "post-create"
    assert "cannot-install-deps" in failed.body["detail"]
    with pytest.raises(WorkspaceNotRunning):
        await manager.shell_command("ws-broken")


async def test_clone_failure_is_the_failing_step(
    manager: WorkspaceManager, control_plane: ControlPlaneDouble, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, "nobranch")
    await manager.create({"id": "ws-nobranch", "repository": str(repo), "branch": "missing"})
    workspace = await provisioned(manager, "ws-nobranch")
    assert workspace["state"] == "error"
    entries = manager.boot_log("ws-nobranch").entries()
    assert [(e["step"], e["status"]) for e in entries] == [
        ("clone", "started"),
        ("clone", "failed"),
    ]
    assert "missing" in entries[-1]["detail"]
    await control_plane.wait_for_async("provisioning-failed", target="ws-nobranch")


# --- lifecycle ------------------------------------------------------------------------------


async def test_stop_restart_rebuild_delete(
    manager: WorkspaceManager, config: AgentConfig, node_id: str, tmp_path: Path
) -> None:
    hooks = {
        "image": BASE_IMAGE,
        "postCreateCommand": "echo created >> $HOME/hooks",
        "postStartCommand": "echo started >> $HOME/hooks",
    }
    repo = make_repo(tmp_path, "life", hooks)
    await manager.create({"id": "ws-life", "repository": str(repo)})
    first = await provisioned(manager, "ws-life")
    assert first["state"] == "running", first["error"]
    engine = manager.backend.engine  # type: ignore[attr-defined]
    run_shell(await manager.shell_command("ws-life"), "echo work > notes.txt")
    hooks_ran = run_shell(await manager.shell_command("ws-life"), "cat $HOME/hooks").stdout
    assert hooks_ran.split() == ["created", "started"]

    stopped = await manager.stop("ws-life")
    assert stopped["state"] == "stopped"
    info = await engine.inspect(first["container_id"])
    assert info is not None and not info.running
    with pytest.raises(WorkspaceNotRunning):
        await manager.shell_command("ws-life")
    assert (await manager.stop("ws-life"))["state"] == "stopped"  # stopping twice is fine

    restarting = await manager.restart("ws-life")
    assert restarting["state"] == "creating"
    restarted = await provisioned(manager, "ws-life")
    assert restarted["state"] == "running"
    assert restarted["container_id"] == first["container_id"]
    info = await engine.inspect(first["container_id"])
    assert info is not None and info.running
    hooks_ran = run_shell(await manager.shell_command("ws-life"), "cat $HOME/hooks").stdout
    assert hooks_ran.split() == ["created", "started", "started"]  # every start, one create
    with pytest.raises(InvalidTransition):
        await manager.restart("ws-life")  # already running

    # A rebuild fetches the repository again (a new commit lands) on a fresh checkout.
    (repo / "fixed.txt").write_text("new commit\n")
    git(repo, "add", "fixed.txt")
    git(repo, "commit", "--quiet", "--message", "fix")
    await manager.rebuild("ws-life")
    rebuilt = await provisioned(manager, "ws-life")
    assert rebuilt["state"] == "running", rebuilt["error"]
    assert rebuilt["container_id"] != first["container_id"]
    assert await engine.inspect(first["container_id"]) is None
    steps_of_rebuild = steps(manager.boot_log("ws-life").entries())
    assert "remove container" in steps_of_rebuild
    done = run_shell(await manager.shell_command("ws-life"), "cat fixed.txt; ls")
    assert done.stdout.split()[:3] == ["new", "commit", "README.md"]
    assert "notes.txt" not in done.stdout, "a fresh clone: work not committed is gone"

    manager.store.add_tab("ws-life", "s1", "shell")
    await manager.delete("ws-life")
    assert await engine.inspect(rebuilt["container_id"]) is None
    assert not (config.state_dir / "workspaces" / "ws-life").exists()
    assert manager.store.tabs("ws-life") == []
    with pytest.raises(WorkspaceNotFound):
        manager.get("ws-life")
    assert _containers(node_id) == []


async def test_delete_while_creating_stops_the_cli_and_leaves_nothing(
    manager: WorkspaceManager, config: AgentConfig, node_id: str, tmp_path: Path
) -> None:
    slow = {**DEVCONTAINER, "postCreateCommand": "sleep 120"}
    repo = make_repo(tmp_path, "slow", slow)
    await manager.create({"id": "ws-slow", "repository": str(repo)})
    async with asyncio.timeout(READY_TIMEOUT_SECONDS):
        async for entry in manager.boot_log("ws-slow").subscribe():
            if entry["step"] == "post-create":
                break
    assert manager.get("ws-slow")["state"] == "creating"
    with pytest.raises(InvalidTransition):
        await manager.stop("ws-slow")

    await asyncio.wait_for(manager.delete("ws-slow"), 30)
    assert _containers(node_id) == []
    assert not (config.state_dir / "workspaces" / "ws-slow").exists()
    cli = [p for p in psutil.Process().children(recursive=True) if "devcontainer" in _cmd(p)]
    assert cli == []


def _cmd(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.NoSuchProcess:
        return ""


async def test_a_new_manager_finds_workspaces_by_label_and_reconciles(
    manager: WorkspaceManager,
    config: AgentConfig,
    reporter: ControlPlane,
    tmp_path: Path,
) -> None:
    for name in ("keep", "gone", "halt"):
        repo = make_repo(tmp_path, name)
        await manager.create({"id": f"ws-{name}", "repository": str(repo)})
    for name in ("keep", "gone", "halt"):
        assert (await provisioned(manager, f"ws-{name}"))["state"] == "running"
    manager.store.add_tab("ws-keep", "s1", "shell")
    manager.store.add_tab("ws-keep", "s2", "logs")
    engine = manager.backend.engine  # type: ignore[attr-defined]
    await engine.remove(manager.get("ws-gone")["container_id"])  # behind the agent's back
    await engine.stop(manager.get("ws-halt")["container_id"])
    before = {w["id"]: w for w in manager.list()}

    # A second manager on the same state dir, as after kill -9 and a restart.
    store = Store(config.state_dir / "agent.db")
    again = WorkspaceManager(config, store, reporter)
    await again.start()
    try:
        keep = again.get("ws-keep")
        assert keep["state"] == "running"
        assert keep["container_id"] == before["ws-keep"]["container_id"]
        assert [t["name"] for t in store.tabs("ws-keep")] == ["shell", "logs"]
        done = run_shell(await again.shell_command("ws-keep"), "ls")
        assert done.stdout.split() == ["README.md"]

        gone = again.get("ws-gone")
        assert gone["state"] == "error"
        assert "gone" in gone["error"] and "rebuild" in gone["error"]
        assert again.get("ws-halt")["state"] == "stopped"

        await again.rebuild("ws-gone")
        assert (await provisioned(again, "ws-gone"))["state"] == "running"
    finally:
        await again.close()
        store.close()


# --- states ---------------------------------------------------------------------------------


def test_transition_table_is_the_one_judge() -> None:
    check_transition("ws", "pending", WorkspaceState.CREATING)
    check_transition("ws", "running", WorkspaceState.STOPPING)
    for current, target in (
        ("pending", WorkspaceState.RUNNING),
        ("stopped", WorkspaceState.STOPPING),
        ("creating", WorkspaceState.STOPPING),
        ("stopping", WorkspaceState.CREATING),
    ):
        with pytest.raises(InvalidTransition, match=f"is {current}"):
            check_transition("ws", current, target)
    assert set(ALLOWED_TRANSITIONS) == set(WorkspaceState)


# --- the boot log -------------------------------------------------------------------------


async def test_boot_log_replays_then_streams_live_and_ends_with_the_run() -> None:
    boot = BootLog("ws", clock=lambda: "2026-01-01T00:00:00.000Z")
    await boot.add("clone", StepStatus.STARTED, "one")
    seen: list[str] = []

    async def follow() -> None:
        async for entry in boot.subscribe():
            seen.append(entry["message"])

    follower = asyncio.create_task(follow())
    await eventually(lambda: seen == ["one"], "the follower to see the first entry", 10)
    await boot.add("clone", StepStatus.SUCCEEDED, "two", detail="x" * (MAX_DETAIL_CHARS + 10))
    boot.finish()
    await asyncio.wait_for(follower, 1)
    assert seen == ["one", "two"]
    assert len(boot.entries()[-1]["detail"]) == MAX_DETAIL_CHARS
    assert boot.entries()[0] == {
        "step": "clone",
        "status": "started",
        "message": "one",
        "detail": None,
        "timestamp": "2026-01-01T00:00:00.000Z",
    }

    # After the run, a viewer gets the whole log and its iterator ends.
    assert [e["message"] async for e in boot.subscribe()] == ["one", "two"]
    # A rebuild opens a new run on the same log.
    boot.open()
    follower = asyncio.create_task(follow())
    await asyncio.sleep(0.01)
    await boot.add("ready", StepStatus.SUCCEEDED, "three")
    boot.finish()
    await asyncio.wait_for(follower, 1)
    assert seen[-3:] == ["one", "two", "three"]


# --- host backend ---------------------------------------------------------------------------


async def test_host_backend_runs_the_shell_in_the_checkout_and_says_it_is_not_isolated(
    control_plane: ControlPlaneDouble, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(control_plane, tmp_path / "state", SAM_BACKEND="host")
    session = new_session()
    reporter = ControlPlane(config, session)
    store = Store(config.state_dir / "agent.db")
    manager = WorkspaceManager(config, store, reporter)
    try:
        await manager.start()
        assert "NOT isolated" in caplog.text
        repo = make_repo(tmp_path, "hosted", files={"x.txt": "x\n"})
        await manager.create({"id": "ws-host", "repository": str(repo)})
        workspace = await provisioned(manager, "ws-host")
        assert workspace["state"] == "running" and workspace["backend"] == "host"
        entries = manager.boot_log("ws-host").entries()
        assert any("NOT isolated" in e["message"] for e in entries)

        shell = await manager.shell_command("ws-host")
        assert shell.argv == ["bash", "-l"] and shell.cwd == workspace["directory"]
        done = run_shell(shell, 'pwd; ls; echo "$TERM"')
        assert done.stdout.split() == [workspace["directory"], "x.txt", "xterm-256color"]

        assert (await manager.stop("ws-host"))["state"] == "stopped"
        await manager.restart("ws-host")
        assert (await provisioned(manager, "ws-host"))["state"] == "running"
        await manager.delete("ws-host")
        assert not Path(workspace["directory"]).exists()
    finally:
        await manager.close()
        await reporter.close()
        await session.close()
        store.close()


def test_host_backend_is_refused_on_a_cloud_node(
    control_plane: ControlPlaneDouble, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match="SAM_BACKEND"):
        make_config(control_plane, tmp_path / "s1", SAM_BACKEND="host", SAM_CLOUD_NODE="true")
    config = make_config(control_plane, tmp_path / "s2", SAM_BACKEND="host")
    cloud = dataclasses.replace(config, cloud_node=True)
    with pytest.raises(ConfigError, match="not isolated"):
        WorkspaceManager(cloud, Store(tmp_path / "s2" / "agent.db"), None)  # type: ignore[arg-type]


# --- the real agent, killed with -9 ---------------------------------------------------------


async def open_tabs(agent: AgentProcess, token: str, workspace_id: str, count: int) -> list[str]:
    """Open `count` terminal sessions in the workspace and leave them running."""
    url = f"{agent.ws_url}/workspaces/{workspace_id}/terminal/ws?token={token}"
    sessions = []
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        for n in range(count):
            await ws.send_json({"type": "create", "request_id": f"c{n}", "name": f"tab {n}"})
            while (frame := await ws.receive()).type is not aiohttp.WSMsgType.TEXT or (
                json.loads(frame.data)["type"] != "created"
            ):
                assert frame.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY), frame
            sessions.append(json.loads(frame.data)["session"]["session_id"])
    return sessions


def shells_in(container_id: str) -> list[str]:
    ps = ["docker", "exec", container_id, "ps", "-eo", "args="]
    lines = subprocess.run(ps, capture_output=True, text=True, check=True).stdout.splitlines()
    return [line for line in lines if line.startswith("bash")]


async def test_agent_killed_with_9_finds_its_workspaces_and_tabs_again(
    agent_factory: Any, control_plane: ControlPlaneDouble, tmp_path: Path
) -> None:
    agent: AgentProcess = agent_factory(backend="docker", extra_env={"SAM_BASE_IMAGE": BASE_IMAGE})
    repos = [make_repo(tmp_path, f"repo{n}") for n in (1, 2)]
    with agent.client() as client:
        for n, repo in enumerate(repos, 1):
            answer = client.post("/workspaces", json={"id": f"ws-k{n}", "repository": str(repo)})
            assert answer.status_code == 202, answer.text
        bad = client.post("/workspaces", json={"id": "ws-k3", "repository": "$(id)"})
        assert bad.status_code == 400 and "repository" in bad.json()["message"]
    for n in (1, 2):
        control_plane.wait_for("ready", target=f"ws-k{n}", timeout=READY_TIMEOUT_SECONDS)
    with agent.client() as client:
        before = {w["id"]: w for w in client.get("/workspaces").json()["workspaces"]}
    tabs = {
        f"ws-k{n}": await open_tabs(agent, control_plane.terminal_token(f"ws-k{n}"), f"ws-k{n}", n)
        for n in (1, 2)
    }
    assert len(shells_in(before["ws-k2"]["container_id"])) == 2

    agent.kill()
    agent.restart()
    try:
        with agent.client() as client:
            after = {w["id"]: w for w in client.get("/workspaces").json()["workspaces"]}
            assert set(after) == {"ws-k1", "ws-k2"}
            for workspace_id, workspace in after.items():
                assert workspace["state"] == "running"
                assert workspace["container_id"] == before[workspace_id]["container_id"]
                listed = client.get(f"/workspaces/{workspace_id}/terminals").json()["tabs"]
                assert [(t["session_id"], t["live"]) for t in listed] == [
                    (session_id, False) for session_id in tabs[workspace_id]
                ]
                # The shells held their TTYs through the agent (runc's way, as root): they
                # were hung up with it, not left running in the containers.
                assert shells_in(workspace["container_id"]) == []
            for workspace_id in after:
                assert client.delete(f"/workspaces/{workspace_id}").status_code == 200
    finally:
        agent.stop()
