"""The ws-{id} proxy (worker/edge/proxy.py) through the real edge to a real node agent.

One edge (`sam dev`) for the module. Alice's node is a real local node (POST /api/nodes:
the edge's launcher starts `python -m agent`, Docker backend), and her workspace a real
devcontainer on it. The workspace rows are written into the edge's D1 file and dispatched
to the agent with a sam:agent token signed by the edge's own key: this file tests the
proxy, not the workspaces API (tests/e2e/ runs the whole loop through the API).

A second "agent" is a loopback recorder (RecordingAgent) that keeps every request it gets,
so the tests can see exactly what the proxy forwards. Every hop to a node is TLS: the
recorder serves a certificate for its node's name from the edge's local CA, as the
launcher's agents do; a third, certified by another CA, must never see a request.
"""

import asyncio
import base64
import json
import os
import secrets
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest
from aiohttp import WSCloseCode, web

from devtools.local_ca import LocalCa, TlsFiles
from devtools.local_nodes import agent_hostname, local_nodes_ca
from tests.agent.conftest import BASE_IMAGE
from tests.fakes.loopback import LoopbackServer
from tests.fixtures.repos import make_repo
from tests.support.agent_tls import local_node_client
from tests.support.docker_objects import remove_labelled
from tests.support.edge import Edge, free_port, running_edge
from tests.support.edge_tokens import EdgeSigner
from tests.support.terminal_client import TerminalClient, decode_output, encode_input
from tests.support.wait import wait_for
from worker.api.ratelimit import LIMITS
from worker.auth import grants, scoped_tokens

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = ROOT / "tests" / "golden" / "terminal"
READY_TIMEOUT_SECONDS = 90.0
POLL_SECONDS = 0.2


# --- the world ------------------------------------------------------------------------------


@dataclass
class Member:
    id: str
    login: str
    session: str


@dataclass
class World:
    edge: Edge
    signer: EdgeSigner
    alice: Member
    mallory: Member
    node: str  # alice's real local node
    agent_port: int
    workspace: str  # alice's running devcontainer on it
    rows: dict[str, str] = field(default_factory=dict)  # name → workspace id (rows only)
    nodes: dict[str, str] = field(default_factory=dict)  # name → node id (rows only)
    recorder: "RecordingAgent | None" = None
    stranger: "RecordingAgent | None" = None  # certified by another CA than the edge's

    def agent_log(self) -> str:
        path = self.edge.data_dir / "nodes" / self.node / "agent.log"
        return path.read_text(errors="replace")


class RecordingAgent(LoopbackServer):
    """Stands where an agent would: answers the proxied routes and records each request."""

    name = "recording-agent"

    def __init__(self, tls: TlsFiles) -> None:
        super().__init__((tls.cert, tls.key))
        self.seen: list[dict[str, Any]] = []

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/workspaces/{id}/terminals", self._tabs)
        app.router.add_get("/workspaces/{id}/terminal/ws", self._socket)
        app.router.add_post("/workspaces/{id}/agent-sessions/{sid}/prompt", self._prompt)
        app.router.add_get("/workspaces/{id}/agent-sessions/{sid}/ws", self._socket)

    def _record(self, request: web.Request, body: bytes = b"") -> None:
        self.seen.append(
            {
                "path": request.path,
                "query": list(request.query.items()),
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body": body,
            }
        )

    async def _prompt(self, request: web.Request) -> web.Response:
        self._record(request, await request.read())
        return web.json_response({"state": "prompting"}, status=202)

    async def _tabs(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response({"tabs": []})

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        self._record(request)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type is aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(message.data)
            else:
                await ws.send_str(message.data)
        return ws


def app_origin(edge: Edge) -> str:
    return f"http://{edge.host('app')}"


def sign_in(edge: Edge, login: str) -> Member:
    with edge.client("app") as client:
        answer = client.post(
            "/api/auth/dev-login", json={"login": login}, headers={"origin": app_origin(edge)}
        )
    assert answer.status_code == 200, answer.text
    return Member(answer.json()["id"], login, answer.cookies["sam_session"])


def database(edge: Edge) -> sqlite3.Connection:
    return sqlite3.connect(edge.data_dir / "d1" / "sam.sqlite")


def new_node_id() -> str:
    return "n" + secrets.token_hex(8)


def insert_node(edge: Edge, user_id: str, port: int, node_id: str | None = None) -> str:
    """A running node row whose agent is whatever listens on 127.0.0.1:`port`, reached as
    `vm-{id}.localhost` (rows only)."""
    node_id = node_id or new_node_id()
    with closing(database(edge)) as db:
        db.execute(
            "INSERT INTO nodes (id, user_id, name, provider, status, agent_host, agent_port) "
            "VALUES (?, ?, ?, 'local', 'running', ?, ?)",
            (node_id, user_id, f"proxy-{node_id[-4:]}", agent_hostname(node_id), port),
        )
        db.commit()
    return node_id


def certify(edge: Edge, node_id: str, directory: Path, ca: LocalCa | None = None) -> TlsFiles:
    """A certificate for the node's agent name, from the edge's own CA unless `ca`."""
    issuer = ca or local_nodes_ca(edge.data_dir)
    return issuer.issue(agent_hostname(node_id), directory / node_id)


def agent_env_for(edge: Edge, signer: EdgeSigner, node_id: str, directory: Path) -> dict[str, str]:
    """A node agent's settings to serve this edge as a local node: trust its token keys, run
    the workspace base image, and serve TLS as vm-{id}.localhost with the edge CA's certificate."""
    tls = certify(edge, node_id, directory)
    return {
        "SAM_JWKS_URL": f"{signer.issuer}/.well-known/jwks.json",
        "SAM_JWT_ISSUER": signer.issuer,
        "SAM_BASE_IMAGE": BASE_IMAGE,
        "SAM_TLS_CERT": str(tls.cert),
        "SAM_TLS_KEY": str(tls.key),
    }


def insert_workspace(
    edge: Edge, user_id: str, node_id: str | None, status: str = "running", dispatched: bool = True
) -> str:
    workspace_id = "w" + secrets.token_hex(6)
    with closing(database(edge)) as db:
        db.execute(
            "INSERT INTO workspaces (id, user_id, node_id, name, repository, status, "
            "dispatched_at) VALUES (?, ?, ?, ?, '/srv/repo', ?, ?)",
            (
                workspace_id,
                user_id,
                node_id,
                f"proxy-{workspace_id[-4:]}",
                status,
                "2025-01-01T00:00:00.000Z" if dispatched else None,
            ),
        )
        db.commit()
    return workspace_id


def as_member(edge: Edge, member: Member) -> httpx.Client:
    """An API client on the app host, signed in as `member` (session cookie, app Origin)."""
    client = edge.client("app")
    client.timeout = httpx.Timeout(60.0)
    client.headers.update({"cookie": f"sam_session={member.session}", "origin": app_origin(edge)})
    return client


def local_node(edge: Edge, member: Member) -> tuple[str, int]:
    """A real local node of `member` (an agent process), once it has reported ready."""
    with as_member(edge, member) as client:
        made = client.post("/api/nodes", json={"provider": "local"})
        assert made.status_code == 201, made.text
        node_id = made.json()["id"]
        shown = wait_for(
            lambda: (n := client.get(f"/api/nodes/{node_id}").json())["status"] == "running" and n,
            "the local node's ready callback",
            READY_TIMEOUT_SECONDS,
        )
    edge.assert_docker_backend(node_id)
    return node_id, shown["agent_port"]


def dispatch(world_edge: Edge, signer: EdgeSigner, node_id: str, port: int, repo: Path) -> str:
    """A workspace row of the node's owner, brought up on the agent as the API would."""
    with closing(database(world_edge)) as db:
        (owner,) = db.execute("SELECT user_id FROM nodes WHERE id = ?", (node_id,)).fetchone()
    workspace_id = insert_workspace(world_edge, owner, node_id, status="creating")
    agent = {"authorization": f"Bearer {asyncio.run(signer.agent(node_id))}"}
    with local_node_client(world_edge.data_dir, node_id, port, headers=agent, timeout=30) as client:
        made = client.post("/workspaces", json={"id": workspace_id, "repository": str(repo)})
        assert made.status_code == 202, made.text

        def running() -> bool:
            state = client.get(f"/workspaces/{workspace_id}").json()
            assert state["state"] != "error", state
            return state["state"] == "running"

        wait_for(running, "the devcontainer to come up", READY_TIMEOUT_SECONDS)
    with closing(database(world_edge)) as db:
        db.execute(
            "UPDATE workspaces SET status = 'running' WHERE id = ? AND status = 'creating'",
            (workspace_id,),
        )
        db.commit()
    return workspace_id


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base = tmp_path_factory.mktemp("proxy")
    variables = {"SAM_RATE_LIMITS": ",".join(f"{name}=100000/60" for name in LIMITS)}
    repo = make_repo(base, "repo", files={"README.md": "# proxied\n"})
    recorder_node, stranger_node = new_node_id(), new_node_id()
    with running_edge(base / ".sam", vars=variables) as edge:
        stranger_ca = LocalCa.ensure(base / "another-ca", name="not this edge's CA")
        recorder = RecordingAgent(certify(edge, recorder_node, base)).start()
        stranger = RecordingAgent(certify(edge, stranger_node, base, stranger_ca)).start()
        signer = EdgeSigner(edge.data_dir, edge.domain)
        node = None
        try:
            alice, mallory = sign_in(edge, "alice"), sign_in(edge, "mallory")
            node, port = local_node(edge, alice)
            workspace = dispatch(edge, signer, node, port, repo)
            built = World(
                edge,
                signer,
                alice,
                mallory,
                node,
                port,
                workspace,
                recorder=recorder,
                stranger=stranger,
            )
            mallory_node = insert_node(edge, mallory.id, free_port())
            built.nodes = {
                "mallory": mallory_node,
                "recorder": insert_node(edge, alice.id, recorder.port, recorder_node),
                "stranger": insert_node(edge, alice.id, stranger.port, stranger_node),
                "dead": insert_node(edge, alice.id, free_port()),
            }
            built.rows = {
                "second": insert_workspace(edge, alice.id, node),
                "mallory": insert_workspace(edge, mallory.id, mallory_node),
                "recorded": insert_workspace(edge, alice.id, built.nodes["recorder"]),
                "stranger": insert_workspace(edge, alice.id, built.nodes["stranger"]),
                "dead": insert_workspace(edge, alice.id, built.nodes["dead"]),
                "stopped": insert_workspace(edge, alice.id, node, status="stopped"),
                "failed": insert_workspace(edge, alice.id, node, status="error"),
                "unplaced": insert_workspace(edge, alice.id, None, "creating", dispatched=False),
            }
            yield built
        finally:
            if node is not None:
                remove_node(edge, alice, node)
            signer.close()
            recorder.stop()
            stranger.stop()


def remove_node(edge: Edge, member: Member, node_id: str) -> None:
    """Delete the node (its agent stops); its containers go with it, checked by label."""
    with as_member(edge, member) as client:
        client.delete(f"/api/nodes/{node_id}")
    remove_labelled(f"sam.node={node_id}")  # and the workspaces' networks


# --- calling the proxy -----------------------------------------------------------------------


def ws_host(world: World, workspace_id: str) -> str:
    return world.edge.host(f"ws-{workspace_id}")


def terminal_url(world: World, workspace_id: str) -> str:
    return f"http://127.0.0.1:{world.edge.port}/workspaces/{workspace_id}/terminal/ws"


def handshake_headers(origin: str | None = None) -> dict[str, str]:
    """An RFC 6455 opening handshake, sent with httpx so a refusal's JSON can be read."""
    headers = {
        "upgrade": "websocket",
        "connection": "Upgrade",
        "sec-websocket-key": base64.b64encode(os.urandom(16)).decode(),
        "sec-websocket-version": "13",
    }
    if origin is not None:
        headers["origin"] = origin
    return headers


async def call(
    world: World,
    workspace_id: str,
    transport: str,
    token: str | list[str] | None = None,
    cookie: str | None = None,
    origin: str | None = None,
    path: str | None = None,
    method: str = "GET",
) -> httpx.Response:
    """One request to ws-{workspace_id}: `transport` "http" (the tab list) or "ws" (a
    terminal handshake that is expected to be refused)."""
    if path is None:
        suffix = "terminals" if transport == "http" else "terminal/ws"
        path = f"/workspaces/{workspace_id}/{suffix}"
    headers = {"host": ws_host(world, workspace_id)}
    if transport == "ws":
        headers.update(handshake_headers(origin))
    elif origin is not None:
        headers["origin"] = origin
    if cookie is not None:
        headers["cookie"] = f"sam_session={cookie}"
    params = [("token", t) for t in ([token] if isinstance(token, str) else token or [])]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{world.edge.port}") as client:
        return await client.request(method, path, params=params, headers=headers, timeout=30)


def error_of(response: httpx.Response) -> str:
    body = response.json()
    assert set(body) == {"error", "message"}, body
    return body["error"]


AGENT_LOG_SETTLE_SECONDS = 0.3


def agent_requests(world: World, workspace_id: str) -> int:
    """How many requests for `workspace_id` the real agent has logged."""
    return sum(
        1
        for line in world.agent_log().splitlines()
        if "http.request" in line and f"/workspaces/{workspace_id}" in line
    )


def settled_agent_requests(world: World, workspace_id: str) -> int:
    """`agent_requests` once it stops changing: a WebSocket an earlier test closed is
    logged by the agent only when its handler ends."""
    count = agent_requests(world, workspace_id)
    while True:
        time.sleep(AGENT_LOG_SETTLE_SECONDS)
        again = agent_requests(world, workspace_id)
        if again == count:
            return count
        count = again


# --- the happy paths ---------------------------------------------------------------------------


async def test_the_tab_list_over_http_with_a_token_and_with_the_owners_session(
    world: World,
) -> None:
    token = await world.signer.terminal(
        world.alice.id, world.node, world.workspace, world.alice.session
    )
    before = agent_requests(world, world.workspace)
    by_token = await call(world, world.workspace, "http", token=token)
    assert by_token.status_code == 200, by_token.text
    assert isinstance(by_token.json()["tabs"], list)
    assert by_token.headers["cache-control"] == "no-store"
    by_session = await call(world, world.workspace, "http", cookie=world.alice.session)
    assert by_session.status_code == 200, by_session.text
    assert by_session.json() == by_token.json()
    # Both really went to the agent, and neither token appears in the edge's log.
    wait_for(
        lambda: agent_requests(world, world.workspace) >= before + 2,
        "the agent's log",
        READY_TIMEOUT_SECONDS,
    )
    assert token not in world.edge.log()


async def test_a_terminal_through_the_proxy_runs_a_command(world: World) -> None:
    token = await world.signer.terminal(
        world.alice.id, world.node, world.workspace, world.alice.session
    )
    async with TerminalClient.connect(
        terminal_url(world, world.workspace), host=ws_host(world, world.workspace), token=token
    ) as term:
        session = await term.create()
        await term.run(session, "echo $((6*7))")
        await term.wait_for_line(session, b"42")
        listed = await term.request("list")
        assert session in [s["session_id"] for s in listed["sessions"]]
        await term.end_session(session)


async def test_reattach_through_the_proxy_after_a_dropped_socket_is_byte_exact(
    world: World,
) -> None:
    token = await world.signer.terminal(
        world.alice.id, world.node, world.workspace, world.alice.session
    )
    url, host = terminal_url(world, world.workspace), ws_host(world, world.workspace)
    async with TerminalClient.connect(url, host=host, token=token) as first:
        session = await first.create()
        # Output keeps coming while nobody is attached: the reattach must fill exactly that.
        await first.run(session, "for i in $(seq 1 300); do echo line-$i; sleep 0.005; done")
        await first.wait_for(session, b"line-20\r\n")
        had, end = bytes(first.output[session]), first.end[session]
    assert len(had) == end
    async with TerminalClient.connect(url, host=host, token=token) as second:
        attached = await second.attach(session, end)
        assert (attached["offset"], attached["reset"]) == (end, False)
        await second.wait_for(session, b"line-300\r\n")
        await second.until(lambda: b"$ " in bytes(second.output[session])[-40:])
        rest = bytes(second.output[session])
        total = second.end[session]
    async with TerminalClient.connect(url, host=host, token=token) as replay:
        again = await replay.attach(session, 0)
        assert (again["offset"], again["reset"]) == (0, False)
        await replay.until(lambda: replay.end.get(session, 0) >= total)
        whole = bytes(replay.output[session])[:total]
        await replay.end_session(session)
    assert had + rest[: total - end] == whole
    assert whole.count(b"line-") >= 300


async def test_the_owners_session_opens_a_terminal_from_the_app_origin(world: World) -> None:
    async with TerminalClient.connect(
        terminal_url(world, world.workspace),
        host=ws_host(world, world.workspace),
        headers={"Origin": app_origin(world.edge), "Cookie": f"sam_session={world.alice.session}"},
    ) as term:
        session = await term.create()
        await term.end_session(session)


# --- who may connect ----------------------------------------------------------------------------


async def misuse(world: World, case: str) -> dict[str, Any]:
    """The credential of each misuse case: {"token": ...} and/or {"cookie": ...}."""
    signer, alice, mallory = world.signer, world.alice, world.mallory
    mine = {
        "sub": alice.id,
        "node": world.node,
        "workspace": world.workspace,
        "grant": grants.for_session(alice.session),
    }
    good = signer.claims("sam:terminal", **mine)
    match case:
        case "nothing":
            return {}
        case "garbage":
            return {"token": "not-a-jwt"}
        case "two_tokens":
            token = await signer.terminal(alice.id, world.node, world.workspace, alice.session)
            return {"token": [token, token]}
        case "expired":
            return {"token": await signer.expired(good)}
        case "alg_none":
            return {"token": await signer.unsigned(good)}
        case "hmac_with_public_key":
            return {"token": await signer.hmac_with_public_key(good)}
        case "unknown_kid":
            return {"token": signer.unknown_kid(good)}
        case "wrong_key_for_kid":
            return {"token": await signer.wrong_key_for_kid(good)}
        case "wrong_issuer":
            return {"token": await signer.sign({**good, "iss": "https://evil.example"})}
        case "agent_token":
            return {"token": await signer.agent(world.node)}
        case "another_users_token":
            theirs = world.rows["mallory"]
            return {
                "token": await signer.terminal(
                    mallory.id, world.nodes["mallory"], theirs, mallory.session
                )
            }
        case "another_workspace":
            return {
                "token": await signer.terminal(
                    alice.id, world.node, world.rows["second"], alice.session
                )
            }
        case "another_users_sub":
            return {"token": await signer.sign({**good, "sub": mallory.id})}
        case "another_node":
            return {"token": await signer.sign({**good, "node": world.nodes["dead"]})}
        case "another_users_session":
            return {"cookie": mallory.session}
        case "unknown_session":
            return {"cookie": secrets.token_urlsafe(32)}
    raise AssertionError(case)


MISUSE = {
    "nothing": (401, "unauthorized"),
    "garbage": (401, "invalid_token"),
    "two_tokens": (401, "invalid_token"),
    "expired": (401, "invalid_token"),
    "alg_none": (401, "invalid_token"),
    "hmac_with_public_key": (401, "invalid_token"),
    "unknown_kid": (401, "invalid_token"),
    "wrong_key_for_kid": (401, "invalid_token"),
    "wrong_issuer": (401, "invalid_token"),
    "agent_token": (401, "invalid_token"),  # a sam:agent token is not a terminal token
    "another_users_token": (403, "token_scope"),  # mallory's token for her workspace
    "another_workspace": (403, "token_scope"),  # alice's token for her other workspace
    "another_node": (403, "token_scope"),  # the workspace's token, bound to another node
    "another_users_sub": (404, "workspace_not_found"),  # not yours: as if it did not exist
    "another_users_session": (404, "workspace_not_found"),
    "unknown_session": (401, "unauthorized"),
}


@pytest.mark.parametrize("transport", ["http", "ws"])
@pytest.mark.parametrize("case", list(MISUSE))
async def test_token_misuse_is_refused_before_the_agent(
    world: World, case: str, transport: str
) -> None:
    status, code = MISUSE[case]
    credential = await misuse(world, case)
    # A cookie on a WebSocket counts only with the app's Origin; tokens need no Origin.
    origin = app_origin(world.edge) if "cookie" in credential else None
    before = settled_agent_requests(world, world.workspace)
    response = await call(world, world.workspace, transport, origin=origin, **credential)
    assert (response.status_code, error_of(response)) == (status, code), response.text
    assert agent_requests(world, world.workspace) == before, "the agent was reached"
    if status == 404:  # exactly what a made-up id gets: nothing says the workspace exists
        made_up = "w" + secrets.token_hex(6)
        assert response.json()["message"].replace(world.workspace, made_up) == (
            f"You have no workspace {made_up!r}."
        )


async def test_signing_out_or_revoking_the_api_token_ends_the_terminal_tokens_it_got(
    world: World,
) -> None:
    laptop = sign_in(world.edge, "alice")  # a second browser session of alice's
    body = {"workspace_id": world.workspace}
    with as_member(world.edge, laptop) as client:
        by_session = client.post("/api/terminal/token", json=body).json()["token"]
        api_token = client.post("/api/tokens", json={"name": "laptop-cli"}).json()
    with world.edge.client("api") as cli:
        cli.headers["authorization"] = f"Bearer {api_token['token']}"
        by_api_token = cli.post("/api/terminal/token", json=body).json()["token"]
    for token in (by_session, by_api_token):
        assert (await call(world, world.workspace, "http", token=token)).status_code == 200

    url, host = terminal_url(world, world.workspace), ws_host(world, world.workspace)
    async with (
        TerminalClient.connect(url, host=host, token=by_session) as signed_out,
        TerminalClient.connect(url, host=host, token=by_api_token) as still_in,
    ):
        await signed_out.request("list")
        with as_member(world.edge, laptop) as client:
            assert client.post("/api/auth/logout").status_code == 204
        # The node closed the terminal socket the signed-out session had open; the socket
        # opened with the API token stays.
        assert await signed_out.closed_by_server() == WSCloseCode.POLICY_VIOLATION
        assert "sessions" in await still_in.request("list")
    for transport in ("http", "ws"):
        refused = await call(world, world.workspace, transport, token=by_session)
        assert (refused.status_code, error_of(refused)) == (401, "token_revoked")
        assert "Sign in again" in refused.json()["message"]
    # The API token was not signed out, and alice's other browser is untouched.
    assert (await call(world, world.workspace, "http", token=by_api_token)).status_code == 200
    assert (
        await call(world, world.workspace, "http", cookie=world.alice.session)
    ).status_code == 200

    with world.edge.client("api") as cli:
        cli.headers["authorization"] = f"Bearer {api_token['token']}"
        assert cli.delete(f"/api/tokens/{api_token['id']}").status_code == 204
    refused = await call(world, world.workspace, "http", token=by_api_token)
    assert (refused.status_code, error_of(refused)) == (401, "token_revoked")


@pytest.mark.parametrize(
    "origin, credential, expected",
    [
        ("http://evil.example", "token", 403),
        ("null", "token", 403),
        ("sibling", "token", 403),  # another workspace's host is another origin
        ("https://app", "token", 403),  # the app host, but the wrong scheme
        ("http://evil.example", "cookie", 403),
        (None, "cookie", 403),  # a cookie without Origin: no proof it is the app's page
        ("app", "token", 101),
        (None, "token", 101),
        ("app", "cookie", 101),
    ],
)
async def test_a_websocket_is_opened_only_from_the_app_origin(
    world: World, origin: str | None, credential: str, expected: int
) -> None:
    app_host = world.edge.host("app")
    origin = {
        "app": f"http://{app_host}",
        "https://app": f"https://{app_host}",
        "sibling": f"http://{ws_host(world, world.rows['second'])}",
    }.get(origin or "", origin)
    headers = {} if origin is None else {"Origin": origin}
    token = None
    if credential == "token":
        token = await world.signer.terminal(
            world.alice.id, world.node, world.workspace, world.alice.session
        )
    else:
        headers["Cookie"] = f"sam_session={world.alice.session}"
    if expected == 101:
        async with TerminalClient.connect(
            terminal_url(world, world.workspace),
            host=ws_host(world, world.workspace),
            token=token,
            headers=headers,
        ) as term:
            assert (await term.request("list"))["type"] == "sessions"
        return
    cookie = world.alice.session if credential == "cookie" else None
    response = await call(world, world.workspace, "ws", token=token, cookie=cookie, origin=origin)
    assert (response.status_code, error_of(response)) == (403, "forbidden_origin")


# --- which workspace, which path ------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["http", "ws"])
@pytest.mark.parametrize(
    "row, status, code",
    [
        ("made_up", 404, "workspace_not_found"),
        ("mallory", 404, "workspace_not_found"),
        ("stopped", 409, "workspace_stopped"),
        ("failed", 409, "workspace_failed"),
        ("unplaced", 409, "workspace_not_ready"),
        ("dead", 502, "node_unreachable"),
    ],
)
async def test_the_workspace_must_be_the_callers_and_reachable(
    world: World, row: str, status: int, code: str, transport: str
) -> None:
    workspace_id = "w" + secrets.token_hex(6) if row == "made_up" else world.rows[row]
    origin = app_origin(world.edge)
    response = await call(world, workspace_id, transport, cookie=world.alice.session, origin=origin)
    assert (response.status_code, error_of(response)) == (status, code), response.text
    if code == "workspace_stopped":
        assert f"POST /api/workspaces/{workspace_id}/restart" in response.json()["message"]


@pytest.mark.parametrize("transport", ["http", "ws"])
async def test_an_agent_certified_by_another_ca_gets_nothing(world: World, transport: str) -> None:
    """TLS to the node is verified against the one CA that certifies nodes: an agent (or
    anyone on its address) with another CA's certificate is a 502, and sees no request."""
    assert world.stranger is not None
    origin = app_origin(world.edge)
    response = await call(
        world, world.rows["stranger"], transport, cookie=world.alice.session, origin=origin
    )
    assert (response.status_code, error_of(response)) == (502, "node_unreachable"), response.text
    assert "Certificate" in response.json()["message"]
    assert world.stranger.seen == []


@pytest.mark.parametrize(
    "method, path, status",
    [
        ("GET", "/", 404),
        ("GET", "/workspaces/{other}/terminals", 404),  # another workspace on the same node
        ("GET", "/workspaces/{id}/terminals/../../{other}/terminals", 404),
        ("GET", "/workspaces/{id}/%2e%2e/{other}/terminals", 404),
        ("GET", "/workspaces", 404),  # the agent's list of every workspace on the node
        ("GET", "/health", 404),
        ("GET", "/workspaces/{id}/terminal/ws", 404),  # a WebSocket route without upgrade
        ("POST", "/workspaces/{id}/stop", 404),
        ("POST", "/workspaces/{id}", 405),  # changes go through /api/workspaces
        ("DELETE", "/workspaces/{id}", 405),
        ("DELETE", "/workspaces/{id}/agent-sessions/as-1", 405),
        ("GET", "/workspaces/{id}/agent-sessions/as-1/prompt", 405),
        ("POST", "/workspaces/{id}/agent-sessions/as-1/delete", 404),
        ("GET", "/workspaces/{id}/agent-sessions/as-1/ws", 404),  # no upgrade
    ],
)
async def test_only_the_workspaces_own_routes_are_served(
    world: World, method: str, path: str, status: int
) -> None:
    target = path.format(id=world.workspace, other=world.rows["second"])
    before = settled_agent_requests(world, world.rows["second"])
    token = await world.signer.terminal(
        world.alice.id, world.node, world.workspace, world.alice.session
    )
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{world.edge.port}") as client:
        request = client.build_request(
            method,
            target,
            params={"token": token},
            headers={"host": ws_host(world, world.workspace)},
        )
        request.url = request.url.copy_with(raw_path=target.encode() + b"?token=" + token.encode())
        response = await client.send(request)
    assert response.status_code == status, response.text
    assert error_of(response) in ("not_found", "method_not_allowed")
    assert agent_requests(world, world.rows["second"]) == before


# --- what reaches the agent ----------------------------------------------------------------


async def test_only_what_the_agent_needs_is_forwarded_over_http(world: World) -> None:
    assert world.recorder is not None
    workspace_id, node_id = world.rows["recorded"], world.nodes["recorder"]
    token = await world.signer.terminal(world.alice.id, node_id, workspace_id, world.alice.session)
    hostile = {
        "host": ws_host(world, workspace_id),
        "cookie": f"sam_session={world.alice.session}; other=1",
        "authorization": "Bearer sam_pat_not-for-the-agent",
        "cf-connecting-ip": "6.6.6.6",  # Cloudflare (and the local edge) set this, not clients
        "x-evil": "1",
        "accept": "application/json",
    }
    query = [("token", token), ("view", "full"), ("token2", "kept")]
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{world.edge.port}") as client:
        response = await client.get(
            f"/workspaces/{workspace_id}/terminals", params=query, headers=hostile
        )
    assert response.status_code == 200, response.text
    seen = world.recorder.seen[-1]
    assert seen["path"] == f"/workspaces/{workspace_id}/terminals"
    assert seen["query"] == [("view", "full"), ("token2", "kept")]
    headers = seen["headers"]
    assert "cookie" not in headers and "x-evil" not in headers
    assert headers["host"] == f"{agent_hostname(node_id)}:{world.recorder.port}"
    assert headers["accept"] == "application/json"
    assert headers["x-forwarded-host"] == ws_host(world, workspace_id)
    assert headers["x-forwarded-proto"] == "http"
    assert headers["x-forwarded-for"] == "127.0.0.1"  # the peer, never the client's claim
    scheme, _, agent_token = headers["authorization"].partition(" ")
    assert scheme == "Bearer"
    claims = await scoped_tokens.verify(
        world.signer.deployment, agent_token, scoped_tokens.Audience.AGENT, node_id
    )
    assert claims["node"] == node_id


@pytest.mark.parametrize("credential", ["token", "cookie"])
async def test_a_websocket_reaches_the_agent_with_one_terminal_token(
    world: World, credential: str
) -> None:
    assert world.recorder is not None
    workspace_id, node_id = world.rows["recorded"], world.nodes["recorder"]
    headers = {"Origin": app_origin(world.edge), "Authorization": "Bearer sam_pat_x"}
    token = None
    if credential == "token":
        token = await world.signer.terminal(
            world.alice.id, node_id, workspace_id, world.alice.session
        )
    else:
        headers["Cookie"] = f"sam_session={world.alice.session}"
    url = f"{terminal_url(world, workspace_id)}"
    async with TerminalClient.connect(
        url + "?view=1" if token is None else url,
        host=ws_host(world, workspace_id),
        token=token,
        headers=headers,
    ) as term:
        await term.ws.send_bytes(b"\x00\xffraw")  # relayed both ways, byte for byte
        echoed = await term.ws.receive(timeout=10)
        assert echoed.data == b"\x00\xffraw"
    seen = world.recorder.seen[-1]
    forwarded = [value for name, value in seen["query"] if name == "token"]
    assert len(forwarded) == 1
    assert "cookie" not in seen["headers"] and "authorization" not in seen["headers"]
    assert "origin" not in seen["headers"]
    claims = await scoped_tokens.verify(
        world.signer.deployment,
        forwarded[0],
        scoped_tokens.Audience.TERMINAL,
        workspace=workspace_id,
    )
    assert (claims["sub"], claims["node"]) == (world.alice.id, node_id)
    if token is not None:
        assert forwarded[0] == token
    else:
        assert ("view", "1") in seen["query"]


async def test_an_agent_session_post_reaches_the_agent_with_its_body(world: World) -> None:
    assert world.recorder is not None
    workspace_id, node_id = world.rows["recorded"], world.nodes["recorder"]
    token = await world.signer.terminal(world.alice.id, node_id, workspace_id, world.alice.session)
    body = json.dumps({"text": "héllo"}).encode()
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{world.edge.port}") as client:
        response = await client.post(
            f"/workspaces/{workspace_id}/agent-sessions/as-1/prompt",
            params={"token": token},
            content=body,
            headers={"host": ws_host(world, workspace_id), "content-type": "application/json"},
        )
    assert response.status_code == 202, response.text
    seen = world.recorder.seen[-1]
    assert (seen["path"], seen["query"], seen["body"]) == (
        f"/workspaces/{workspace_id}/agent-sessions/as-1/prompt",
        [],
        body,
    )
    assert seen["headers"]["content-type"] == "application/json"
    agent_token = seen["headers"]["authorization"].removeprefix("Bearer ")
    claims = await scoped_tokens.verify(
        world.signer.deployment, agent_token, scoped_tokens.Audience.AGENT, node_id
    )
    assert claims["node"] == node_id


@pytest.mark.parametrize("credential", ["token", "cookie"])
async def test_a_session_viewer_gets_its_token_as_a_header_and_keeps_after(
    world: World, credential: str
) -> None:
    assert world.recorder is not None
    workspace_id, node_id = world.rows["recorded"], world.nodes["recorder"]
    headers = {"Origin": app_origin(world.edge), "Host": ws_host(world, workspace_id)}
    params = {"after": "7"}
    if credential == "token":
        params["token"] = await world.signer.terminal(
            world.alice.id, node_id, workspace_id, world.alice.session
        )
    else:
        headers["Cookie"] = f"sam_session={world.alice.session}"
    path = f"/workspaces/{workspace_id}/agent-sessions/as-1/ws"
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(
            f"http://127.0.0.1:{world.edge.port}{path}", params=params, headers=headers
        ) as ws,
    ):
        await ws.send_str("{}")
        assert (await ws.receive(timeout=10)).data == "{}"
    seen = world.recorder.seen[-1]
    assert (seen["path"], seen["query"]) == (path, [("after", "7")])
    assert "cookie" not in seen["headers"] and "origin" not in seen["headers"]
    forwarded = seen["headers"]["authorization"].removeprefix("Bearer ")
    claims = await scoped_tokens.verify(
        world.signer.deployment, forwarded, scoped_tokens.Audience.TERMINAL, workspace=workspace_id
    )
    assert (claims["sub"], claims["node"]) == (world.alice.id, node_id)
    if credential == "token":
        assert forwarded == params["token"]


# --- CORS: the web app calls the HTTP routes from app.{domain} -----------------------------


async def preflight(world: World, origin: str, method: str, headers: str = "") -> httpx.Response:
    workspace_id = world.rows["recorded"]
    asked = {"access-control-request-method": method, "origin": origin}
    if headers:
        asked["access-control-request-headers"] = headers
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{world.edge.port}") as client:
        return await client.options(
            f"/workspaces/{workspace_id}/agent-sessions/as-1/prompt",
            headers={"host": ws_host(world, workspace_id), **asked},
        )


async def test_the_apps_origin_may_call_the_session_routes_cross_origin(world: World) -> None:
    assert world.recorder is not None
    workspace_id, node_id = world.rows["recorded"], world.nodes["recorder"]
    origin = app_origin(world.edge)
    before = len(world.recorder.seen)
    allowed = await preflight(world, origin, "POST", "Content-Type")
    assert allowed.status_code == 204, allowed.text
    assert allowed.headers["access-control-allow-origin"] == origin
    assert allowed.headers["access-control-allow-methods"] == "GET, POST"
    assert allowed.headers["access-control-allow-headers"] == "content-type"
    assert "access-control-allow-credentials" not in allowed.headers
    assert len(world.recorder.seen) == before  # answered by the edge alone

    token = await world.signer.terminal(world.alice.id, node_id, workspace_id, world.alice.session)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{world.edge.port}") as client:
        prompted = await client.post(
            f"/workspaces/{workspace_id}/agent-sessions/as-1/prompt",
            params={"token": token},
            json={"text": "hi"},
            headers={"host": ws_host(world, workspace_id), "origin": origin},
        )
    assert prompted.status_code == 202, prompted.text
    assert prompted.headers["access-control-allow-origin"] == origin
    assert prompted.headers["vary"] == "Origin"
    # A refusal reaches the app's page readable too: its JSON says what to do next.
    refused = await call(world, workspace_id, "http", origin=origin)
    assert refused.status_code == 401 and error_of(refused) == "unauthorized"
    assert refused.headers["access-control-allow-origin"] == origin


@pytest.mark.parametrize(
    ("origin", "method", "headers"),
    [
        ("http://evil.localhost:1", "POST", "content-type"),  # another origin
        (None, "POST", "content-type"),  # the app's origin on another port: set below
        ("app", "PUT", ""),  # a method the routes do not take
        ("app", "POST", "content-type, authorization"),  # a header nothing needs
    ],
)
async def test_any_other_cross_origin_call_is_refused(
    world: World, origin: str | None, method: str, headers: str
) -> None:
    app = app_origin(world.edge)
    asked = {"app": app, None: app.replace(str(world.edge.port), str(world.edge.port + 1))}
    refused = await preflight(world, asked.get(origin, origin or ""), method, headers)
    assert refused.status_code == 403 and error_of(refused) == "cors_refused"
    # (A 403 preflight fails in the browser whatever its headers; the app may read why.)
    assert ("access-control-allow-origin" in refused.headers) == (origin == "app")
    # An answer to another origin's page carries no CORS header: the page cannot read it.
    workspace_id, node_id = world.rows["recorded"], world.nodes["recorder"]
    token = await world.signer.terminal(world.alice.id, node_id, workspace_id, world.alice.session)
    other = await call(world, workspace_id, "http", token=token, origin="http://evil.localhost:1")
    assert other.status_code == 200
    assert "access-control-allow-origin" not in other.headers


# --- the client's codec ------------------------------------------------------------------------


def test_the_test_clients_codec_matches_the_golden_frames() -> None:
    output = json.loads((GOLDEN / "binary-output.json").read_text())
    fields = output["fields"]
    decoded = decode_output(bytes.fromhex(output["binary"]["hex"]))
    assert decoded == (fields["session_id"], fields["offset"], bytes.fromhex(fields["data_hex"]))
    typed = json.loads((GOLDEN / "binary-input.json").read_text())
    fields = typed["fields"]
    encoded = encode_input(fields["session_id"], bytes.fromhex(fields["data_hex"]))
    assert encoded == bytes.fromhex(typed["binary"]["hex"])
