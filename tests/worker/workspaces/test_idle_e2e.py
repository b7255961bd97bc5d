"""Idle workspaces through the real edge, a real local node agent and the Docker Engine,
with the loopback GitHub (its App) and a real git server (`git http-backend`).

The idle timeout is a few seconds here (SAM_IDLE_TIMEOUT_SECONDS); cron runs on demand
(`/__scheduled`), and each wait is for what the user would see (tests/support/wait.py).

- A workspace someone is watching (a terminal socket with input) stays running past the
  timeout; once the socket is closed, cron stops it with the reason the app shows; its
  node goes warm and, after the warm window, no agent or container of it is left.
- Uncommitted work in an idle workspace of a GitHub repository: a sam/wip/ branch on the
  git server holds it (with the workspace's wip_branch naming it) before it is stopped;
  so does a commit the user made and never pushed.
- Uncommitted work without GitHub: the workspace keeps running, flagged needs_attention,
  and its node outlives the warm window.
"""

import asyncio
import json
import subprocess
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import aiohttp
import httpx
import pytest

from tests.e2e.git_server import GitServer
from tests.fakes.github import FakeGitHub
from tests.fixtures.repos import make_repo
from tests.support.edge import Edge, running_edge, signed_in, with_secrets
from tests.support.wait import wait_for
from tests.worker.workspaces.test_workspaces_api import (
    DEVCONTAINER,
    containers,
    kill_agents,
    remove_containers,
    settled,
)
from twin.d1 import D1Database
from twin.env import Env
from worker.deployment import Deployment
from worker.github import installations

IDLE_SECONDS = 4
WARM_SECONDS = 3
HEARTBEAT_SECONDS = 0.5
RUNNING_TIMEOUT_SECONDS = 120.0
CRON = "*/5 * * * *"


def public_reads(github: FakeGitHub) -> Callable[[str | None, str, bool], int]:
    """GitHub's git endpoint for a public repository: anyone clones, a push needs a token
    with contents:write on it."""

    def access(token: str | None, full_name: str, push: bool) -> int:
        if token is None and not push:
            return 200
        return github.git_access(token, full_name, push)

    return access


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("idle")
    made: list[str] = []
    with FakeGitHub() as github, GitServer(root / "served", public_reads(github)) as git_server:
        source = make_repo(root / "sources", "app", devcontainer=DEVCONTAINER)
        url = git_server.publish(source, owner="dana")
        github.add_repository("dana", "app", git_dir=git_server.bare_path(url))
        installation = github.install("dana", ["app"], users={"alice"})
        data_dir = with_secrets(root / ".sam", github.app_secrets())
        vars = {
            **github.app_public_vars(),
            # git lives on the base URL (as on github.com), the REST API on its own.
            "SAM_GITHUB_BASE_URL": git_server.url,
            "SAM_IDLE_TIMEOUT_SECONDS": str(IDLE_SECONDS),
            "SAM_WARM_TIMEOUT_SECONDS": str(WARM_SECONDS),
            "SAM_NODE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
            "SAM_LOCAL_REPOSITORY_ROOTS": str(root / "sources"),
        }
        beats = {"SAM_LOCAL_NODE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS)}
        try:
            with running_edge(data_dir, vars=vars, extra_env=beats) as edge:
                clients = {login: signed_in(edge, login) for login in ("alice", "bob", "carol")}
                alice_id = clients["alice"].get("/api/auth/me").json()["id"]
                database = D1Database(edge.data_dir / "d1" / "sam.sqlite")
                env = Env({"DATABASE": database, "SAM_DOMAIN": edge.domain})
                asyncio.run(
                    installations.record(
                        Deployment.of(env), alice_id, installation.id, "dana", "User"
                    )
                )
                database.close()
                yield SimpleNamespace(
                    edge=edge,
                    root=root,
                    url=url,
                    git_server=git_server,
                    made=made,
                    **clients,
                )
                for client in clients.values():
                    for workspace_id in made:
                        client.delete(f"/api/workspaces/{workspace_id}")
                    client.close()
        finally:
            remove_containers(made)
            kill_agents(data_dir)


def create(world: SimpleNamespace, client: httpx.Client, repository: str) -> dict[str, Any]:
    made = client.post("/api/workspaces", json={"repository": repository, "provider": "local"})
    assert made.status_code == 202, made.text
    world.made.append(made.json()["id"])
    running = settled(client, made.json()["id"], ("running", "error"))
    assert running["status"] == "running", running
    return running


def cron(edge: Edge) -> None:
    with edge.client() as loopback:
        assert loopback.get("/__scheduled", params={"cron": CRON}).status_code == 200


def shown(client: httpx.Client, workspace_id: str) -> dict[str, Any]:
    reply = client.get(f"/api/workspaces/{workspace_id}")
    assert reply.status_code == 200, reply.text
    return reply.json()


def swept_until(
    world: SimpleNamespace,
    client: httpx.Client,
    workspace_id: str,
    check: Callable[[dict[str, Any]], Any],
) -> dict[str, Any]:
    """Run cron until the workspace, as its owner sees it, passes `check`."""

    def once() -> Any:
        cron(world.edge)
        workspace = shown(client, workspace_id)
        return workspace if check(workspace) else None

    return wait_for(once, f"{workspace_id} after cron", timeout=60, poll=0.5)


def write_file(workspace: dict[str, Any], name: str, text: str) -> None:
    folder = workspace["remote_folder"]
    script = f"printf %s '{text}' > {folder}/{name}"
    subprocess.run(["docker", "exec", workspace["container_id"], "sh", "-c", script], check=True)


def as_user(workspace: dict[str, Any], *argv: str) -> None:
    """`argv` in the checkout, as the container's remote user (the checkout's owner)."""
    where = ["-u", workspace["remote_user"], "-w", workspace["remote_folder"]]
    done = subprocess.run(
        ["docker", "exec", *where, workspace["container_id"], *argv], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


def node_agent_pid(edge: Edge, node_id: str) -> int | None:
    path = edge.data_dir / "nodes" / node_id / "node.json"
    return json.loads(path.read_text()).get("pid") if path.exists() else None


def alive(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


async def watch(world: SimpleNamespace, client: httpx.Client, workspace: dict[str, Any]) -> None:
    """With a terminal open and typed into, the workspace outlives the idle timeout."""
    minted = client.post("/api/terminal/token", json={"workspace_id": workspace["id"]})
    assert minted.status_code == 200, minted.text
    url = workspace["urls"]["terminal_ws"] + "?token=" + minted.json()["token"]
    host = f"ws-{workspace['id']}.{world.edge.domain}"
    target = url.replace(f"//{host}", f"//127.0.0.1:{world.edge.port}")
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(target, headers={"Host": host}) as ws,
    ):
        await ws.send_json({"type": "create", "request_id": "c1", "name": "tab"})
        async for frame in ws:
            if frame.type is aiohttp.WSMsgType.TEXT and json.loads(frame.data)["type"] == "created":
                session_id = json.loads(frame.data)["session"]["session_id"]
                break
        await ws.send_json({"type": "input", "session_id": session_id, "data": "echo hi\n"})
        first = await asyncio.to_thread(
            wait_for,
            lambda: shown(client, workspace["id"])["last_active_at"],
            "a beat with the viewer",
            30,
        )
        # Beats while watched keep moving the last use on; past the timeout since the first
        # of them, cron leaves it running.
        await asyncio.to_thread(
            wait_for,
            lambda: shown(client, workspace["id"])["last_active_at"] > first,
            "a later beat",
            30,
        )
        await asyncio.to_thread(
            wait_for,
            lambda: _seconds_since(first) > IDLE_SECONDS + 1,
            "the idle timeout to pass since the first beat",
            30,
        )
        await asyncio.to_thread(cron, world.edge)
        assert shown(client, workspace["id"])["status"] == "running"


def _seconds_since(stamp: str) -> float:
    moment = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return datetime.now(UTC).timestamp() - moment.timestamp()


def test_a_watched_workspace_runs_on_and_an_idle_one_stops_with_its_reason_and_node(
    world: SimpleNamespace,
) -> None:
    client: httpx.Client = world.carol
    repo = make_repo(world.root / "sources", "carol-clean", devcontainer=DEVCONTAINER)
    workspace = create(world, client, str(repo))
    asyncio.run(watch(world, client, workspace))

    stopped = swept_until(world, client, workspace["id"], lambda w: w["status"] == "stopped")
    assert stopped["stopped_reason"] == (
        f"stopped after {IDLE_SECONDS} s without terminal or agent activity"
    )
    assert stopped["wip_branch"] is None and stopped["needs_attention"] is None
    [line] = containers(workspace["id"])
    assert line.endswith("exited"), line  # stopped, files kept
    # Its node went warm; after the window nothing of it is left.
    node_id = stopped["node_id"]
    pid = node_agent_pid(world.edge, node_id)
    assert alive(pid)
    wait_for(
        lambda: client.get(f"/api/nodes/{node_id}").status_code == 404,
        "the warm node torn down",
        timeout=60,
    )
    wait_for(lambda: not alive(pid), "the node's agent gone", timeout=30)
    wait_for(lambda: containers(workspace["id"]) == [], "no container left", timeout=30)


def test_unsaved_work_of_a_github_repository_is_pushed_to_a_wip_branch_first(
    world: SimpleNamespace,
) -> None:
    client: httpx.Client = world.alice
    workspace = create(world, client, world.url)
    write_file(workspace, "notes.txt", "half done")

    stopped = swept_until(world, client, workspace["id"], lambda w: w["status"] == "stopped")
    branch = stopped["wip_branch"]
    assert branch is not None and branch.startswith(f"sam/wip/{workspace['id']}-"), stopped
    assert stopped["stopped_reason"].endswith(f"its unsaved work is on the branch {branch}")
    bare = world.git_server.bare_path(world.url)
    held = subprocess.run(
        ["git", "--git-dir", str(bare), "show", f"refs/heads/{branch}:notes.txt"],
        capture_output=True,
        text=True,
    )
    assert held.returncode == 0, held.stderr
    assert held.stdout == "half done"
    # Nothing else changed on the server: main is where it was.
    main = subprocess.run(
        ["git", "--git-dir", str(bare), "for-each-ref", "--format=%(refname)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(main) == sorted(["refs/heads/main", f"refs/heads/{branch}"])


def test_unsaved_work_without_github_keeps_the_workspace_and_its_node(
    world: SimpleNamespace,
) -> None:
    client: httpx.Client = world.bob
    repo = make_repo(world.root / "sources", "bob-local", devcontainer=DEVCONTAINER)
    workspace = create(world, client, str(repo))
    write_file(workspace, "draft.txt", "not saved anywhere")

    flagged = swept_until(world, client, workspace["id"], lambda w: w["needs_attention"])
    assert flagged["status"] == "running"
    assert "not on GitHub" in flagged["needs_attention"]
    assert "delete the workspace" in flagged["needs_attention"]
    node_id = flagged["node_id"]
    # Past several warm windows and cron runs, the node and the work are still there.
    since = flagged["updated_at"]
    wait_for(
        lambda: _seconds_since(since) > 2 * WARM_SECONDS + 1,
        "two warm windows to pass",
        timeout=30,
    )
    cron(world.edge)
    assert client.get(f"/api/nodes/{node_id}").json()["status"] == "running"
    assert shown(client, workspace["id"])["status"] == "running"
    cat = ["docker", "exec", workspace["container_id"], "cat"]
    kept = subprocess.run([*cat, f"{workspace['remote_folder']}/draft.txt"], capture_output=True)
    assert kept.stdout == b"not saved anywhere"


def test_commits_not_pushed_anywhere_are_saved_as_well(world: SimpleNamespace) -> None:
    client: httpx.Client = world.alice
    workspace = create(world, client, world.url)
    write_file(workspace, "feature.txt", "committed, never pushed")
    as_user(workspace, "git", "add", "feature.txt")
    identity = ["-c", "user.name=Ann", "-c", "user.email=ann@example.com"]
    as_user(workspace, "git", *identity, "commit", "--quiet", "-m", "local only")

    stopped = swept_until(world, client, workspace["id"], lambda w: w["status"] == "stopped")
    branch = stopped["wip_branch"]
    assert branch is not None, stopped
    bare = world.git_server.bare_path(world.url)
    subject = subprocess.run(
        ["git", "--git-dir", str(bare), "log", "-1", "--format=%s", f"refs/heads/{branch}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert subject == "local only", "the user's own commit, with nothing left to add"
