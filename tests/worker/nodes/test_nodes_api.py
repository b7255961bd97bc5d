"""`/api/nodes` and the node callbacks, through the real edge over real HTTP.

Users sign in with dev sign-in. Nodes are made the way provisioning leaves them (a row in
the edge's own D1 file) where a test is about the API rather than a provider; the local
provider's whole path (POST → a real agent → its heartbeat → running → DELETE) is at the
end. Callback tokens are minted by worker/auth/scoped_tokens.py in this process with the edge's own
signing keys. Heartbeat health is judged against SAM_NODE_HEARTBEAT_SECONDS, set small.

Covers: owners only (another user's node is a 404 on read and delete, and survives),
anonymous refused, bad input, callbacks refused for another node's token (403), another
audience, an expired or forged token, a user's own session or API token (401), ready
(creating → running, idempotent, refused for a node in error), heartbeats (first beat is
ready, metrics, healthy → stale → unhealthy and back, cron writing health into D1, the
callback token renewed past half its life).
"""

import asyncio
import base64
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.agent_tls import local_node_client
from tests.support.edge import Edge, running_edge, signed_in
from tests.support.wait import wait_for
from tests.worker.node_support import add_node
from twin.clock import ManualClock
from twin.d1 import D1Database
from twin.env import Env
from worker.auth import scoped_tokens
from worker.clock import Clock, SystemClock
from worker.deployment import Deployment

HEARTBEAT_SECONDS = 0.5  # stale after 1 s without a beat, unhealthy after 2.5 s
BEAT = {
    "cpu_percent": 12.5,
    "memory": {"total": 8_000_000_000, "used": 2_000_000_000},
    "disk": {"total": 100_000_000_000, "used": 40_000_000_000},
    "active_workspaces": 0,
    "agent_version": "0.1.0",
}


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    data_dir: Path = tmp_path_factory.mktemp("nodes") / ".sam"
    with running_edge(
        data_dir,
        vars={"SAM_NODE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS)},
        # Local agents beat at the interval the control plane judges them by.
        extra_env={"SAM_LOCAL_NODE_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS)},
    ) as e:
        yield e


@pytest.fixture(scope="module")
def alice(edge: Edge) -> Iterator[httpx.Client]:
    with closing(signed_in(edge, "alice")) as client:
        yield client


@pytest.fixture(scope="module")
def bob(edge: Edge) -> Iterator[httpx.Client]:
    with closing(signed_in(edge, "bob")) as client:
        yield client


def user_id(client: httpx.Client) -> str:
    return client.get("/api/auth/me").json()["id"]


@pytest.fixture(scope="module")
def env(edge: Edge, alice: httpx.Client) -> Iterator[Env]:
    """An `env` on the edge's own D1 file and encryption key: rows and tokens."""
    with edge.client("api") as api:
        assert api.get("/.well-known/jwks.json").status_code == 200  # the edge makes the key
    secrets = json.loads((edge.data_dir / "dev-secrets.json").read_text())
    database = D1Database(edge.data_dir / "d1" / "sam.sqlite")
    yield Env(
        {
            "DATABASE": database,
            "SAM_DOMAIN": edge.domain,
            "SAM_ENCRYPTION_KEY": secrets["SAM_ENCRYPTION_KEY"],
        }
    )
    database.close()


def run(coroutine: Any) -> Any:
    return asyncio.run(coroutine)


def new_node(env: Env, owner: httpx.Client, status: str = "running", **fields: Any) -> str:
    return run(add_node(env, user_id(owner), status=status, **fields))


SYSTEM_CLOCK = SystemClock()


def node_token(env: Env, node_id: str, clock: Clock = SYSTEM_CLOCK) -> str:
    return run(scoped_tokens.mint_node_token(Deployment.of(env, clock), node_id)).token


def callback(edge: Edge, path: str, token: str | None, body: Any) -> httpx.Response:
    headers = {} if token is None else {"authorization": f"Bearer {token}"}
    with edge.client("api") as api:
        return api.post(path, json=body, headers=headers)


def row(env: Env, node_id: str) -> Any:
    return run(env.DATABASE.prepare("SELECT * FROM nodes WHERE id = ?").bind(node_id).first())


# --- the owner's routes ------------------------------------------------------------------------


def test_users_list_and_read_only_their_own_nodes(
    env: Env, alice: httpx.Client, bob: httpx.Client
) -> None:
    mine = new_node(env, alice, name="alice's box")
    theirs = new_node(env, bob)
    listed = alice.get("/api/nodes")
    assert listed.status_code == 200, listed.text
    ids = [node["id"] for node in listed.json()["nodes"]]
    assert mine in ids and theirs not in ids
    shown = alice.get(f"/api/nodes/{mine}").json()
    assert (shown["id"], shown["name"], shown["provider"]) == (mine, "alice's box", "local")
    assert "user_id" not in shown and "dns_record_id" not in shown

    stranger = alice.get(f"/api/nodes/{theirs}")
    made_up = alice.get("/api/nodes/n0000000000000000")
    assert stranger.status_code == made_up.status_code == 404
    assert stranger.json() == made_up.json()
    assert stranger.json()["error"] == "node_not_found"


def test_another_users_node_cannot_be_deleted(
    env: Env, alice: httpx.Client, bob: httpx.Client
) -> None:
    theirs = new_node(env, bob)
    refused = alice.delete(f"/api/nodes/{theirs}")
    assert refused.status_code == 404 and refused.json()["error"] == "node_not_found"
    assert bob.get(f"/api/nodes/{theirs}").status_code == 200
    assert row(env, theirs)["status"] == "running"


def test_the_owner_deletes_a_node_and_it_is_gone(env: Env, alice: httpx.Client) -> None:
    mine = new_node(env, alice)
    deleted = alice.delete(f"/api/nodes/{mine}")
    assert deleted.status_code == 204, deleted.text
    assert alice.get(f"/api/nodes/{mine}").status_code == 404
    assert row(env, mine) is None
    assert alice.delete(f"/api/nodes/{mine}").status_code == 404


def test_nodes_routes_need_a_signed_in_user(edge: Edge, env: Env, alice: httpx.Client) -> None:
    mine = new_node(env, alice)
    with edge.client("api") as anonymous:
        for method, path, body in [
            ("GET", "/api/nodes", None),
            ("POST", "/api/nodes", {"provider": "local"}),
            ("GET", f"/api/nodes/{mine}", None),
            ("DELETE", f"/api/nodes/{mine}", None),
        ]:
            reply = anonymous.request(method, path, json=body)
            assert reply.status_code == 401, (method, path, reply.text)
            assert reply.json()["error"] == "unauthorized"
        # A node's own callback token is no way in to the owner's routes.
        forged = anonymous.get(
            "/api/nodes", headers={"authorization": f"Bearer {node_token(env, mine)}"}
        )
        assert forged.status_code == 401
    assert row(env, mine) is not None


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"provider": "aws"},
        {"provider": "local", "name": ""},
        {"provider": "local", "name": "x" * 65},
        {"provider": "local", "name": "evil\nname"},
        {"provider": "hetzner", "size": "CX22"},
        {"provider": "hetzner", "size": "cx22; rm -rf /"},
        {"provider": "hetzner", "location": "../fsn1"},
        {"provider": "local", "user_id": "someone-else"},
        [],
    ],
)
def test_bad_create_requests_are_400s_and_make_nothing(alice: httpx.Client, body: Any) -> None:
    before = alice.get("/api/nodes").json()["nodes"]
    reply = alice.post("/api/nodes", json=body)
    assert reply.status_code == 400, reply.text
    assert reply.json()["error"] == "invalid_request"
    assert alice.get("/api/nodes").json()["nodes"] == before


def test_a_cross_site_create_with_the_session_cookie_is_refused(
    edge: Edge, alice: httpx.Client
) -> None:
    with edge.client("app") as forged:
        forged.headers["origin"] = "http://evil.example"
        forged.cookies.update(alice.cookies)
        assert forged.post("/api/nodes", json={"provider": "local"}).status_code == 403


# --- callbacks: who may make them --------------------------------------------------------------


def test_callbacks_refuse_anything_but_that_nodes_token(
    edge: Edge, env: Env, alice: httpx.Client, bob: httpx.Client
) -> None:
    node = new_node(env, alice, status="creating")
    other = new_node(env, bob, status="creating")
    a_day_ago = time.time() - 2 * scoped_tokens.NODE_TOKEN_SECONDS
    cases = {
        "another node's token": (node_token(env, other), 403, "token_scope"),
        "an agent token": (
            run(scoped_tokens.mint_agent_token(Deployment.of(env), node)).token,
            401,
            "invalid_token",
        ),
        "an expired token": (node_token(env, node, ManualClock(a_day_ago)), 401, "invalid_token"),
        "garbage": ("not-a-jwt", 401, "invalid_token"),
        "no token": (None, 401, "unauthorized"),
    }
    for path, body in [
        (f"/api/nodes/{node}/ready", {"agent_port": 8080}),
        (f"/api/nodes/{node}/heartbeat", BEAT),
    ]:
        for name, (token, status, code) in cases.items():
            reply = callback(edge, path, token, body)
            assert (reply.status_code, reply.json()["error"]) == (status, code), (path, name)
    # The owner's own credentials are not a node's.
    assert alice.post(f"/api/nodes/{node}/ready", json={"agent_port": 8080}).status_code == 401
    assert row(env, node)["status"] == "creating"


def test_a_forged_unsigned_token_is_refused(edge: Edge, env: Env, alice: httpx.Client) -> None:
    node = new_node(env, alice, status="creating")

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    claims = {"aud": "sam:node", "node": node, "iss": f"http://api.{edge.domain}"}
    claims |= {"iat": int(time.time()), "exp": int(time.time()) + 600, "jti": "x"}
    unsigned = f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."
    reply = callback(edge, f"/api/nodes/{node}/ready", unsigned, {"agent_port": 8080})
    assert reply.status_code == 401
    assert row(env, node)["status"] == "creating"


# --- ready ---------------------------------------------------------------------------------------


def test_ready_moves_creating_to_running_and_is_idempotent(
    edge: Edge, env: Env, alice: httpx.Client
) -> None:
    node = new_node(env, alice, status="creating")
    token = node_token(env, node)
    reply = callback(
        edge, f"/api/nodes/{node}/ready", token, {"agent_port": 9123, "version": "1.2"}
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"id": node, "status": "running"}
    shown = alice.get(f"/api/nodes/{node}").json()
    assert (shown["status"], shown["agent_port"], shown["agent_version"]) == (
        "running",
        9123,
        "1.2",
    )
    assert shown["health"] == "healthy" and shown["ready_at"]
    again = callback(edge, f"/api/nodes/{node}/ready", token, {"agent_port": 9124})
    assert again.status_code == 200 and again.json()["status"] == "running"
    assert alice.get(f"/api/nodes/{node}").json()["agent_port"] == 9124


def test_racing_ready_callbacks_and_first_heartbeats_all_succeed(
    edge: Edge, env: Env, alice: httpx.Client
) -> None:
    node = new_node(env, alice, status="creating", agent_port=8080)
    token = node_token(env, node)
    calls = [(f"/api/nodes/{node}/ready", {"agent_port": 8080})] * 8
    calls += [(f"/api/nodes/{node}/heartbeat", BEAT)] * 8
    with ThreadPoolExecutor(len(calls)) as pool:
        replies = list(pool.map(lambda call: callback(edge, call[0], token, call[1]), calls))
    assert [reply.status_code for reply in replies] == [200] * len(calls), [
        reply.text for reply in replies if reply.status_code != 200
    ]
    assert row(env, node)["status"] == "running"


def test_ready_for_a_node_in_error_is_a_409(edge: Edge, env: Env, alice: httpx.Client) -> None:
    node = new_node(env, alice, status="error")
    reply = callback(edge, f"/api/nodes/{node}/ready", node_token(env, node), {"agent_port": 8080})
    assert reply.status_code == 409 and reply.json()["error"] == "invalid_state_transition"
    assert row(env, node)["status"] == "error"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"agent_port": 0},
        {"agent_port": 70000},
        {"agent_port": "http"},
        {"agent_port": 80, "x": 1},
    ],
)
def test_bad_ready_bodies_are_400s(edge: Edge, env: Env, alice: httpx.Client, body: Any) -> None:
    node = new_node(env, alice, status="creating")
    reply = callback(edge, f"/api/nodes/{node}/ready", node_token(env, node), body)
    assert reply.status_code == 400, reply.text
    assert row(env, node)["status"] == "creating"


def test_a_callback_for_a_deleted_node_is_a_404(edge: Edge, env: Env, alice: httpx.Client) -> None:
    node = new_node(env, alice)
    token = node_token(env, node)
    assert alice.delete(f"/api/nodes/{node}").status_code == 204
    assert callback(edge, f"/api/nodes/{node}/heartbeat", token, BEAT).status_code == 404
    assert callback(edge, f"/api/nodes/{node}/ready", token, {"agent_port": 1}).status_code == 404


# --- heartbeats ----------------------------------------------------------------------------------


def wait_for_health(client: httpx.Client, node: str, wanted: str, within: float) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if client.get(f"/api/nodes/{node}").json()["health"] == wanted:
            return time.monotonic() - started
        time.sleep(0.05)
    raise AssertionError(f"{node} did not become {wanted} within {within}s")


def test_the_first_heartbeat_of_a_creating_node_makes_it_running(
    edge: Edge, env: Env, alice: httpx.Client
) -> None:
    node = new_node(env, alice, status="creating", agent_port=8181)
    reply = callback(edge, f"/api/nodes/{node}/heartbeat", node_token(env, node), BEAT)
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"status": "running", "health": "healthy"}  # no token: it is fresh
    shown = alice.get(f"/api/nodes/{node}").json()
    assert (shown["status"], shown["agent_port"], shown["agent_version"]) == (
        "running",
        8181,
        "0.1.0",
    )
    assert shown["metrics"] == {k: v for k, v in BEAT.items() if k != "agent_version"}


def test_health_goes_stale_then_unhealthy_without_beats_and_back_with_one(
    edge: Edge, env: Env, alice: httpx.Client
) -> None:
    node = new_node(env, alice, status="creating")
    token = node_token(env, node)
    assert callback(edge, f"/api/nodes/{node}/heartbeat", token, BEAT).status_code == 200
    assert alice.get(f"/api/nodes/{node}").json()["health"] == "healthy"
    stale_after = wait_for_health(alice, node, "stale", within=5)
    assert stale_after >= 2 * HEARTBEAT_SECONDS - 0.3
    # Cron writes the judgement into D1 (what queries and the pool read).
    with edge.client() as loopback:
        assert loopback.get("/__scheduled", params={"cron": "*/5 * * * *"}).status_code == 200
    assert row(env, node)["health"] == "stale"
    wait_for_health(alice, node, "unhealthy", within=5)
    with edge.client() as loopback:
        assert loopback.get("/__scheduled", params={"cron": "*/5 * * * *"}).status_code == 200
    assert row(env, node)["health"] == "unhealthy"
    # One beat and it is healthy again, in the answer and in D1.
    assert callback(edge, f"/api/nodes/{node}/heartbeat", token, BEAT).json()["health"] == "healthy"
    assert row(env, node)["health"] == "healthy"
    assert alice.get(f"/api/nodes/{node}").json()["health"] == "healthy"


def test_a_heartbeat_renews_a_token_past_half_its_life(
    edge: Edge, env: Env, alice: httpx.Client
) -> None:
    node = new_node(env, alice)
    old = node_token(env, node, ManualClock(time.time() - scoped_tokens.NODE_TOKEN_SECONDS * 0.6))
    reply = callback(edge, f"/api/nodes/{node}/heartbeat", old, BEAT)
    assert reply.status_code == 200, reply.text
    fresh = reply.json()["callback_token"]
    claims = run(
        scoped_tokens.verify(Deployment.of(env), fresh, scoped_tokens.Audience.NODE, node=node)
    )
    assert claims["exp"] - time.time() > scoped_tokens.NODE_TOKEN_SECONDS * 0.9
    # The fresh one works and is not renewed again.
    again = callback(edge, f"/api/nodes/{node}/heartbeat", fresh, BEAT)
    assert again.status_code == 200 and "callback_token" not in again.json()


@pytest.mark.parametrize(
    "change",
    [
        {"cpu_percent": -1},
        {"cpu_percent": "lots"},
        {"memory": {"total": 1}},
        {"disk": {"total": -5, "used": 0}},
        {"active_workspaces": -1},
        {"agent_version": "1.0\nforged log line"},
        # Per-workspace activity (worker/workspaces/idle.py): each field bounded, each
        # workspace once, ids the agent's own shape.
        {"workspaces": "all of them"},
        {"workspaces": [{"id": "../etc", "idle_seconds": 1}]},
        {"workspaces": [{"id": "w1", "idle_seconds": -1}]},
        {"workspaces": [{"id": "w1", "idle_seconds": "long"}]},
        {"workspaces": [{"id": "w1", "viewers": -2}]},
        {"workspaces": [{"id": "w1", "agent_busy": "maybe"}]},
        {"workspaces": [{"id": "w1"}, {"id": "w1", "agent_busy": True}]},
        {"workspaces": [{"id": f"w{n}"} for n in range(257)]},
    ],
)
def test_bad_heartbeats_are_400s_and_change_nothing(
    edge: Edge, env: Env, alice: httpx.Client, change: dict
) -> None:
    node = new_node(env, alice, status="creating")
    reply = callback(edge, f"/api/nodes/{node}/heartbeat", node_token(env, node), BEAT | change)
    assert reply.status_code == 400, reply.text
    assert row(env, node)["status"] == "creating" and row(env, node)["metrics"] is None


# --- the local provider, end to end -----------------------------------------------------------

LOCAL_AGENT_START_SECONDS = 60.0
LOCAL_AGENT_STOP_SECONDS = 20.0


def agent_health(edge: Edge, node_id: str, port: int) -> dict | None:
    try:
        with local_node_client(edge.data_dir, node_id, port, timeout=2) as client:
            reply = client.get("/health")
    except httpx.TransportError:
        return None
    return reply.json() if reply.status_code == 200 else None


def test_a_local_node_runs_a_real_agent_that_calls_back_and_goes_with_delete(
    edge: Edge, env: Env, alice: httpx.Client, bob: httpx.Client
) -> None:
    reply = alice.post("/api/nodes", json={"provider": "local", "name": "this machine"})
    assert reply.status_code == 201, reply.text
    created = reply.json()
    node = created["id"]
    assert (created["status"], created["provider"], created["name"]) == (
        "creating",
        "local",
        "this machine",
    )
    assert created["agent_host"] == f"vm-{node}.localhost" and created["agent_port"]
    assert bob.get(f"/api/nodes/{node}").status_code == 404

    def running() -> dict | None:
        shown = alice.get(f"/api/nodes/{node}").json()
        assert shown["status"] in ("creating", "running"), shown
        return shown if shown["status"] == "running" and shown["metrics"] else None

    shown = wait_for(running, "the agent was ready and beat", LOCAL_AGENT_START_SECONDS)
    port = shown["agent_port"]
    assert shown["health"] == "healthy" and shown["agent_version"]
    assert shown["metrics"]["memory"]["total"] > 0
    assert agent_health(edge, node, port)["node_id"] == node
    # No bootstrap token or callback token is ever shown or stored in D1.
    assert "token" not in json.dumps(shown)
    assert all("eyJ" not in str(value) for value in dict(row(env, node)).values())

    assert bob.delete(f"/api/nodes/{node}").status_code == 404
    assert agent_health(edge, node, port) is not None
    deleted = alice.delete(f"/api/nodes/{node}")
    assert deleted.status_code == 204, deleted.text
    assert row(env, node) is None
    wait_for(
        lambda: agent_health(edge, node, port) is None,
        "the agent stopped",
        LOCAL_AGENT_STOP_SECONDS,
    )
