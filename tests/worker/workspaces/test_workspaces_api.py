"""Workspaces through the real edge: dev sign-in users, the local provider (a real agent
process per node), the real Docker Engine and the offline base image.

One edge and one local node (alice's) are shared by most tests; the crash test has an
edge of its own, which it kills with SIGKILL mid-provisioning and starts again.
"""

import asyncio
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing, suppress
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import jwt
import pytest

from devtools.local_nodes import agent_hostname
from tests.fixtures.repos import make_repo
from tests.support.agent_tls import edge_ca, trusting
from tests.support.docker_objects import remove_labelled
from tests.support.edge import Edge, running_edge, signed_in
from tests.support.wait import bearer, wait_for
from twin.clock import ManualClock
from twin.d1 import D1Database
from twin.env import Env
from worker.auth import scoped_tokens
from worker.deployment import Deployment
from worker.workspaces import store as workspace_store
from worker.workspaces import sweeps as workspace_sweeps

BASE_IMAGE = "sam-workspace-base:bookworm"
DEVCONTAINER = {"image": BASE_IMAGE}
RUNNING_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.2
CREATE_LIMIT = 50  # per user per 10 min here
TOKEN_LIMIT = 10  # per user per minute here
RATE_LIMITS = f"workspace_create={CREATE_LIMIT}/600,terminal_token={TOKEN_LIMIT}/60"


# --- helpers ------------------------------------------------------------------------------


def settled(client: httpx.Client, workspace_id: str, states: tuple[str, ...]) -> Any:
    """The workspace once its status is one of `states` (polling, as a browser would)."""

    def check() -> Any:
        shown = client.get(f"/api/workspaces/{workspace_id}")
        assert shown.status_code == 200, shown.text
        return shown.json() if shown.json()["status"] in states else None

    return wait_for(
        check, f"workspace {workspace_id} to be {'/'.join(states)}", RUNNING_TIMEOUT_SECONDS
    )


def containers(workspace_id: str) -> list[str]:
    """`docker ps -a` lines for the workspace's container(s): status included."""
    listed = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label=sam.workspace={workspace_id}",
            "--format",
            "{{.ID}} {{.State}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return listed.stdout.split("\n")[:-1]


def remove_containers(workspace_ids: list[str]) -> None:
    """And their networks: what an agent killed before deleting them leaves."""
    for workspace_id in workspace_ids:
        remove_labelled(f"sam.workspace={workspace_id}")


def minter(edge: Edge) -> tuple[Env, D1Database]:
    """An env that signs with the edge's own key (its D1 file and dev secret)."""
    secrets_file = json.loads((edge.data_dir / "dev-secrets.json").read_text())
    database = D1Database(edge.data_dir / "d1" / "sam.sqlite")
    env = Env(
        {
            "DATABASE": database,
            "SAM_DOMAIN": edge.domain,
            "SAM_ENCRYPTION_KEY": secrets_file["SAM_ENCRYPTION_KEY"],
        }
    )
    return env, database


def kill_agents(data_dir: Path) -> None:
    """No agent outlives a test, whatever it left behind."""
    for path in (data_dir / "nodes").glob("*/node.json"):
        pid = json.loads(path.read_text()).get("pid")
        if pid:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


# --- the shared deployment ----------------------------------------------------------------


class World:
    def __init__(self, edge: Edge, repos: Path) -> None:
        self.edge = edge
        self.repos = repos
        self.alice = signed_in(edge, "alice")
        self.mallory = signed_in(edge, "mallory")
        self.env, self.database = minter(edge)
        self.created: list[str] = []
        self.repo = make_repo(repos, "demo", devcontainer=DEVCONTAINER, branches=("feature/x",))

    def create(self, client: httpx.Client, **body: Any) -> dict[str, Any]:
        made = client.post(
            "/api/workspaces",
            json={"repository": str(self.repo), "provider": "local", **body},
        )
        assert made.status_code == 202, made.text
        self.created.append(made.json()["id"])
        return made.json()

    def mint(self, audience: scoped_tokens.Audience, node_id: str) -> str:
        if audience == scoped_tokens.Audience.AGENT:
            return asyncio.run(
                scoped_tokens.mint_agent_token(Deployment.of(self.env), node_id)
            ).token
        return asyncio.run(scoped_tokens.mint_node_token(Deployment.of(self.env), node_id)).token

    def close(self) -> None:
        for workspace_id in self.created:  # through the API: the agents remove them
            self.alice.delete(f"/api/workspaces/{workspace_id}")
        remove_containers(self.created)
        self.alice.close()
        self.mallory.close()
        self.database.close()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    done = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True)
    assert done.returncode == 0, f"{BASE_IMAGE} is missing: run scripts/build-image"
    root = tmp_path_factory.mktemp("workspaces")
    data_dir = root / ".sam"
    try:
        with running_edge(data_dir, vars={"SAM_RATE_LIMITS": RATE_LIMITS}) as edge:
            built = World(edge, root / "repos")
            try:
                yield built
            finally:
                built.close()
    finally:
        kill_agents(data_dir)


@pytest.fixture(scope="module")
def running_workspace(world: World) -> dict[str, Any]:
    """alice's first workspace, running (it brought up alice's local node)."""
    made = world.create(world.alice, name="demo", branch="main")
    return settled(world.alice, made["id"], ("running", "error"))


# --- create → running, the boot log ---------------------------------------------------------


def test_a_workspace_comes_up_and_its_boot_log_has_every_step_in_order(
    world: World, running_workspace: dict[str, Any]
) -> None:
    shown = running_workspace
    assert shown["status"] == "running", shown["error_message"]
    assert shown["name"] == "demo" and shown["branch"] == "main"
    assert shown["backend"] == "docker" and shown["container_id"]
    assert shown["remote_user"] and shown["remote_folder"]
    host = f"ws-{shown['id']}.{world.edge.domain}"
    assert shown["urls"]["terminal_ws"] == (f"ws://{host}/workspaces/{shown['id']}/terminal/ws")
    assert shown["urls"]["boot_log_ws"] == f"ws://{host}/workspaces/{shown['id']}/boot-log/ws"
    assert [line.split()[1] for line in containers(shown["id"])] == ["running"]

    log = world.alice.get(f"/api/workspaces/{shown['id']}/boot-log").json()
    steps = [(entry["source"], entry["step"], entry["status"]) for entry in log["entries"]]
    ours = [step for step in steps if step[0] == "control-plane"]
    theirs = [step for step in steps if step[0] == "agent"]
    assert ours[0] == ("control-plane", "request", "succeeded")
    assert ("control-plane", "node", "started") in ours
    assert ("control-plane", "dispatch", "started") in ours
    assert ("agent", "clone", "succeeded") in theirs
    assert theirs[-1] == ("agent", "ready", "succeeded")
    # The control plane's steps all come before the agent's: it hands over, then the
    # agent works.
    assert steps.index(ours[-1]) < steps.index(theirs[0])
    assert log["dropped"] == 0
    stamps = [entry["timestamp"] for entry in log["entries"]]
    assert all(stamps), stamps

    listed = world.alice.get("/api/workspaces").json()["workspaces"]
    assert shown["id"] in [workspace["id"] for workspace in listed]


def test_the_node_is_reused_for_the_next_workspace(
    world: World, running_workspace: dict[str, Any]
) -> None:
    made = world.create(world.alice)
    assert made["status"] in ("pending", "creating")
    assert made["node_id"] == running_workspace["node_id"], "a running node with room is reused"
    # Handed to the running node's agent within the request: no wait for a VM.
    assert made["status"] == "creating" and made["urls"]["boot_log_ws"]
    shown = settled(world.alice, made["id"], ("running", "error"))
    assert shown["status"] == "running", shown["error_message"]
    assert world.alice.delete(f"/api/workspaces/{made['id']}").status_code == 204


# --- stop, restart, delete ------------------------------------------------------------------


def node_count(client: httpx.Client, node_id: str) -> int:
    return client.get(f"/api/nodes/{node_id}").json()["workspace_count"]


def test_stop_restart_and_delete(world: World, running_workspace: dict[str, Any]) -> None:
    alice = world.alice
    made = world.create(alice)
    workspace_id, node_id = made["id"], made["node_id"]
    assert settled(alice, workspace_id, ("running", "error"))["status"] == "running"
    holding = wait_for(
        lambda: node_count(alice, node_id) == 2 and 2, "both claims", RUNNING_TIMEOUT_SECONDS
    )

    stopped = alice.post(f"/api/workspaces/{workspace_id}/stop")
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "stopped"
    assert stopped.json()["urls"]["boot_log_ws"] is None
    assert [line.split()[1] for line in containers(workspace_id)] == ["exited"]
    # Its claim on the node is released (the other workspace still holds the node).
    wait_for(
        lambda: node_count(alice, node_id) == holding - 1,
        "the claim to be released",
        RUNNING_TIMEOUT_SECONDS,
    )
    # No terminal for a stopped workspace; stopping again changes nothing.
    refused = alice.post("/api/terminal/token", json={"workspace_id": workspace_id})
    assert refused.status_code == 409 and refused.json()["error"] == "workspace_not_running"
    assert alice.post(f"/api/workspaces/{workspace_id}/stop").json()["status"] == "stopped"

    restarted = alice.post(f"/api/workspaces/{workspace_id}/restart")
    assert restarted.status_code == 202, restarted.text
    assert restarted.json()["status"] in ("creating", "running")
    assert restarted.json()["node_id"] == node_id, "restarted where its files are"
    assert settled(alice, workspace_id, ("running", "error"))["status"] == "running"
    assert [line.split()[1] for line in containers(workspace_id)] == ["running"]
    wait_for(
        lambda: node_count(alice, node_id) == holding,
        "the claim to be taken again",
        RUNNING_TIMEOUT_SECONDS,
    )
    # A running workspace is not restarted (stop it first).
    again = alice.post(f"/api/workspaces/{workspace_id}/restart")
    assert again.status_code == 409 and again.json()["error"] == "invalid_state_transition"
    log = alice.get(f"/api/workspaces/{workspace_id}/boot-log").json()["entries"]
    assert ("stop", "succeeded") in [(entry["step"], entry["status"]) for entry in log]

    assert alice.delete(f"/api/workspaces/{workspace_id}").status_code == 204
    assert alice.get(f"/api/workspaces/{workspace_id}").status_code == 404
    assert alice.get(f"/api/workspaces/{workspace_id}/boot-log").status_code == 404
    assert containers(workspace_id) == []
    wait_for(
        lambda: node_count(alice, node_id) == holding - 1,
        "the claim to be released",
        RUNNING_TIMEOUT_SECONDS,
    )
    assert alice.delete(f"/api/workspaces/{workspace_id}").status_code == 404


def test_a_branch_that_does_not_exist_ends_in_error(world: World) -> None:
    made = world.create(world.alice, branch="no-such-branch")
    failed = settled(world.alice, made["id"], ("running", "error"))
    assert failed["status"] == "error"
    assert failed["error_message"], "the agent's message is shown"
    log = world.alice.get(f"/api/workspaces/{made['id']}/boot-log").json()["entries"]
    assert ("agent", "clone", "failed") in [(e["source"], e["step"], e["status"]) for e in log]
    refused = world.alice.post("/api/terminal/token", json={"workspace_id": made["id"]})
    assert refused.status_code == 409
    assert world.alice.delete(f"/api/workspaces/{made['id']}").status_code == 204
    assert containers(made["id"]) == []


# --- validation before anything runs -------------------------------------------------------

BAD_REPOSITORIES = [
    "https://example.com/repo.git; touch /tmp/pwned",
    "https://example.com/$(id).git",
    "--upload-pack=touch /tmp/pwned",
    "-c core.sshCommand=touch",
    "ext::sh -c touch% /tmp/pwned",
    "file:///etc/passwd",
    "http://example.com/plain-http.git",
    "https://example.com/repo.git\ntouch /tmp/pwned",
    "https://example.com/repo.git?upload-pack=x",
    "https://example.com/",
    "relative/path",
    "/tmp/../etc",
    "`id`",
    "",
    "x" * 3000,
]
BAD_BRANCHES = [
    "--orphan",
    "-b",
    "main; touch /tmp/pwned",
    "$(id)",
    "a..b",
    "HEAD",
    "feature/.hidden",
    "topic.lock",
    "main@{1}",
    "main\n",
    "back\\slash",
    "with space",
    "ends/",
    "~tilde",
]


def test_bad_repositories_and_branches_are_refused_before_anything_runs(world: World) -> None:
    # A user of its own (refused requests do not count against the create limit).
    ivan = signed_in(world.edge, "ivan")
    before = ivan.get("/api/workspaces").json()["workspaces"]
    cases = [{"repository": value} for value in BAD_REPOSITORIES] + [
        {"repository": "https://example.com/r.git", "branch": value} for value in BAD_BRANCHES
    ]
    for body in cases:
        refused = ivan.post("/api/workspaces", json={"provider": "local", **body})
        assert refused.status_code == 400, (body, refused.text)
        assert refused.json()["error"] == "invalid_workspace_spec", (body, refused.text)
    others = [
        # A local path means nothing on a cloud node.
        {"repository": str(world.repo), "provider": "hetzner"},
        {"repository": "https://example.com/r.git", "provider": "aws"},
        {"repository": "https://example.com/r.git", "provider": "local", "name": "a\x00b"},
        {"repository": "https://example.com/r.git", "provider": "local", "size": "$(x)"},
        {"repository": "https://example.com/r.git", "provider": "local", "shell": "x"},
        {"repository": ["https://example.com/r.git"], "provider": "local"},
    ]
    for body in others:
        refused = ivan.post("/api/workspaces", json=body)
        assert refused.status_code == 400, (body, refused.text)
    assert ivan.get("/api/workspaces").json()["workspaces"] == before == []
    assert ivan.get("/api/nodes").json()["nodes"] == [], "no node was provisioned"
    assert not Path("/tmp/pwned").exists()
    ivan.close()


def test_the_owners_trust_in_a_devcontainer_reaches_the_agent(world: World) -> None:
    """The agent refuses `--pid host` by default (agent/workspaces/policy.py) and honours
    it when the owner said, at create, that they trust the repository's devcontainer."""
    pid_host = {"image": BASE_IMAGE, "runArgs": ["--pid", "host"]}
    repo = make_repo(world.repos, "pid-host", devcontainer=pid_host)
    refused = world.create(world.alice, repository=str(repo))
    trusted = world.create(world.alice, repository=str(repo), trusted_devcontainer=True)
    assert (refused["trusted_devcontainer"], trusted["trusted_devcontainer"]) == (False, True)
    shown = settled(world.alice, refused["id"], ("running", "error"))
    assert shown["status"] == "error" and "runArgs --pid host" in shown["error_message"]
    shown = settled(world.alice, trusted["id"], ("running", "error"))
    assert shown["status"] == "running", shown["error_message"]
    body = {"repository": str(repo), "provider": "local", "trusted_devcontainer": "maybe"}
    assert world.alice.post("/api/workspaces", json=body).status_code == 400


# --- other users ----------------------------------------------------------------------------


def test_another_user_can_neither_see_nor_touch_a_workspace(
    world: World, running_workspace: dict[str, Any]
) -> None:
    workspace_id = running_workspace["id"]
    mallory = world.mallory
    assert mallory.get("/api/workspaces").json() == {"workspaces": []}
    for method, path in (
        ("GET", f"/api/workspaces/{workspace_id}"),
        ("GET", f"/api/workspaces/{workspace_id}/boot-log"),
        ("POST", f"/api/workspaces/{workspace_id}/stop"),
        ("POST", f"/api/workspaces/{workspace_id}/restart"),
        ("DELETE", f"/api/workspaces/{workspace_id}"),
    ):
        refused = mallory.request(method, path)
        assert refused.status_code == 404, (method, path, refused.text)
        assert refused.json()["error"] == "workspace_not_found"
        assert running_workspace["node_id"] not in refused.text
    refused = mallory.post("/api/terminal/token", json={"workspace_id": workspace_id})
    assert refused.status_code == 404
    # Anonymous: 401, and nothing changed.
    with world.edge.client("api") as anonymous:
        assert anonymous.get(f"/api/workspaces/{workspace_id}").status_code == 401
        assert anonymous.delete(f"/api/workspaces/{workspace_id}").status_code == 401
    assert settled(world.alice, workspace_id, ("running",))
    assert [line.split()[1] for line in containers(workspace_id)] == ["running"]


# --- the agent's callbacks ------------------------------------------------------------------


def test_callbacks_need_the_token_of_the_workspace_s_node(
    world: World, running_workspace: dict[str, Any]
) -> None:
    workspace_id, node_id = running_workspace["id"], running_workspace["node_id"]
    entry = {"step": "forged", "status": "failed", "message": "forged entry"}
    failed = {"step": "clone", "message": "forged failure"}
    with world.edge.client("api") as api:
        for path, body in (
            ("ready", {"state": "running"}),
            ("provisioning-failed", failed),
            ("boot-log", entry),
        ):
            url = f"/api/workspaces/{workspace_id}/{path}"
            another = bearer(world.mint(scoped_tokens.Audience.NODE, "nanothernode0001"))
            assert api.post(url, json=body, headers=another).status_code == 403
            agent = bearer(world.mint(scoped_tokens.Audience.AGENT, node_id))
            assert api.post(url, json=body, headers=agent).status_code == 401
            assert api.post(url, json=body).status_code == 401
            assert api.post(url, json=body, headers=bearer("not.a.jwt")).status_code == 401
        # The right node's token, on a workspace that does not exist.
        mine = bearer(world.mint(scoped_tokens.Audience.NODE, node_id))
        missing = api.post("/api/workspaces/w000000000000/boot-log", json=entry, headers=mine)
        assert missing.status_code == 404
    shown = world.alice.get(f"/api/workspaces/{workspace_id}").json()
    assert shown["status"] == "running" and shown["error_message"] is None
    log = world.alice.get(f"/api/workspaces/{workspace_id}/boot-log").json()["entries"]
    assert "forged" not in json.dumps(log)


# --- terminal tokens ------------------------------------------------------------------------


async def first_boot_log_message(url: str, edge: Edge, node_id: str) -> dict[str, Any]:
    """The first frame of the agent's boot log socket, over TLS verified as the edge does."""
    tls = {"ssl": trusting(edge_ca(edge.data_dir)), "server_hostname": agent_hostname(node_id)}
    async with aiohttp.ClientSession() as session, session.ws_connect(url, **tls) as socket:
        message = await asyncio.wait_for(socket.receive(), 10)
        return json.loads(message.data)


def test_a_terminal_token_is_for_the_owner_of_a_running_workspace(
    world: World, running_workspace: dict[str, Any]
) -> None:
    workspace_id, node_id = running_workspace["id"], running_workspace["node_id"]
    given = world.alice.post("/api/terminal/token", json={"workspace_id": workspace_id})
    assert given.status_code == 200, given.text
    answer = given.json()
    host = f"ws-{workspace_id}.{world.edge.domain}"
    assert answer["url"] == f"ws://{host}/workspaces/{workspace_id}/terminal/ws"
    assert answer["boot_log_url"] == f"ws://{host}/workspaces/{workspace_id}/boot-log/ws"
    assert 0 < answer["expires_at"] - time.time() <= scoped_tokens.TERMINAL_TOKEN_SECONDS + 5
    claims = jwt.decode(answer["token"], options={"verify_signature": False})
    me = world.alice.get("/api/auth/me").json()
    assert claims["aud"] == "sam:terminal"
    assert (claims["sub"], claims["node"], claims["workspace"]) == (me["id"], node_id, workspace_id)

    # The node's real agent accepts it (straight to the agent: the proxy is tested apart).
    port = world.alice.get(f"/api/nodes/{node_id}").json()["agent_port"]
    url = f"wss://127.0.0.1:{port}/workspaces/{workspace_id}/boot-log/ws?token={answer['token']}"
    first = asyncio.run(first_boot_log_message(url, world.edge, node_id))
    assert first["step"] and first["status"] in ("started", "succeeded", "failed")

    for body in ({"workspace_id": "w000000000000"}, {"workspace_id": "../x"}, {}):
        refused = world.alice.post("/api/terminal/token", json=body)
        assert refused.status_code in (400, 404), (body, refused.text)


def test_rate_limit_on_terminal_tokens(world: World) -> None:
    """(The create limit counts accepted workspaces only: tests/worker/api/test_ratelimit.py.)"""
    with closing(signed_in(world.edge, "eve")) as eve:
        for _ in range(TOKEN_LIMIT):
            assert eve.post("/api/terminal/token", json={"workspace_id": "w0"}).status_code == 404
        limited = eve.post("/api/terminal/token", json={"workspace_id": "w0"})
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1


# --- crash of the edge mid-provisioning ---------------------------------------------------


@pytest.mark.parametrize("phase", ["pending", "creating"])
def test_a_crash_of_the_edge_mid_provisioning_leaks_nothing(tmp_path: Path, phase: str) -> None:
    """kill -9 the edge right after the create was accepted (its node still starting) or
    while the agent brings the container up (post-create running); after a restart on the
    same port the workspace completes, and no node or container is left behind."""
    data_dir = tmp_path / ".sam"
    repo = make_repo(
        tmp_path,
        "slow",
        devcontainer={**DEVCONTAINER, "postCreateCommand": "sleep 4"},
    )
    workspace_id = ""
    try:
        with running_edge(data_dir) as edge:
            port = edge.port
            with closing(signed_in(edge, "crashy")) as crashy:
                made = crashy.post(
                    "/api/workspaces", json={"repository": str(repo), "provider": "local"}
                )
                assert made.status_code == 202, made.text
                workspace_id = made.json()["id"]
                if phase == "creating":
                    creating = settled(crashy, workspace_id, ("creating", "running", "error"))
                    assert creating["status"] == "creating"
            edge.process.send_signal(signal.SIGKILL)
            edge.process.wait()

        with running_edge(data_dir, port=port) as edge, closing(signed_in(edge, "crashy")) as c:
            # The restarted node's ready callback converges it: the agent, interrupted,
            # rebuilds it (or gets it for the first time).
            final = settled(c, workspace_id, ("running", "error"))
            assert final["status"] == "running", final["error_message"]
            assert [line.split()[1] for line in containers(workspace_id)] == ["running"]
            log = c.get(f"/api/workspaces/{workspace_id}/boot-log").json()["entries"]
            done = [(e["source"], e["step"], e["status"]) for e in log]
            assert done[-2:] == [
                ("agent", "post-create", "succeeded"),
                ("agent", "ready", "succeeded"),
            ]
            # Cron's sweeps run over it without changing the outcome or leaking a node.
            with edge.client() as loopback:
                fired = loopback.get("/__scheduled", params={"cron": "*/5 * * * *"})
                assert fired.status_code == 200
            nodes = c.get("/api/nodes").json()["nodes"]
            assert [node["id"] for node in nodes] == [final["node_id"]]
            on_disk = sorted(path.name for path in (data_dir / "nodes").iterdir())
            assert on_disk == [final["node_id"]], "every local node is one D1 knows"
            assert c.get(f"/api/workspaces/{workspace_id}").json()["status"] == final["status"]
            assert c.delete(f"/api/workspaces/{workspace_id}").status_code == 204
            assert containers(workspace_id) == []
    finally:
        kill_agents(data_dir)
        if workspace_id:
            remove_containers([workspace_id])


# --- cron: provisioning timeouts and stuck workspaces (in-process, on an injected clock) ---


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[Any]:
    from tests.worker.node_support import build_runtime

    built = build_runtime(tmp_path / ".sam", ManualClock())
    yield built
    built.close()


def test_cron_times_out_provisioning_and_places_orphaned_workspaces_again(runtime: Any) -> None:
    from tests.worker.node_support import add_node, add_user

    env = runtime.env

    async def scenario() -> None:
        user = await add_user(env, "tina")
        node = await add_node(env, user, status="creating")  # never comes up
        started = time.time()

        def at(moment: float) -> Deployment:
            return Deployment.of(env, ManualClock(moment))

        late = await workspace_store.insert(
            at(started), "w00000000000a", user, "late", "https://e.com/r.git", None, "local", None
        )
        await workspace_store.update(at(started), late.id, node_id=node)
        lost = await workspace_store.insert(
            at(started), "w00000000000b", user, "lost", "https://e.com/r.git", None, "local", None
        )
        # Within the grace period nothing happens: a create may still be in flight.
        assert await workspace_sweeps.run(at(started + 10)) == {
            "workspaces_timed_out": 0,
            "workspaces_converged": 0,
            "workspaces_idle_stopped": 0,
        }
        # Later, the one whose create never claimed a node is placed (on the node that
        # is still coming up: its ready callback hands it over).
        swept = await workspace_sweeps.run(
            at(started + workspace_sweeps.CONVERGE_AFTER_SECONDS + 5)
        )
        assert swept["workspaces_converged"] == 1
        placed = await workspace_store.find(at(started), lost.id)
        assert placed is not None and placed.node_id == node and placed.status == "pending"
        # Past the timeout both end in error, and their claims are released.
        past = started + workspace_sweeps.DEFAULT_PROVISIONING_TIMEOUT_SECONDS + 5
        assert (await workspace_sweeps.run(at(past)))["workspaces_timed_out"] == 2
        for workspace_id in (late.id, lost.id):
            failed = await workspace_store.find(at(past), workspace_id)
            assert failed is not None and failed.status == "error"
            assert "30 minutes" in (failed.error_message or "")
        from worker.nodes import pool as node_pool

        assert (await node_pool.lifecycle(at(past), node))["workspaces"] == []
        assert (await workspace_sweeps.run(at(past + 600)))["workspaces_timed_out"] == 0

    asyncio.run(scenario())
