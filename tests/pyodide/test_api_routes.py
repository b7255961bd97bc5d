"""Every route of the API under real Pyodide, called as the authorization matrix says
(tests/support/authorization.py): anonymously, as another user or node, and as its
rightful caller, each answer's status and JSON error shape checked. The last test compares
the app's route table with the routes called here, so a new route cannot go unproven.

Callers are made through routes only: dev sign-in (a session in workerd's KV), API tokens
from /api/tokens, nodes from POST /api/nodes (the LOCAL_NODES double) with node tokens from
the bootstrap exchange. Workspace rows are written into D1 as the matrix writes them (a
real one needs an agent to create it; tests/pyodide/test_workspace_proxy.py has one).
"""

import secrets
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.fakes.anthropic import ScriptedModel
from tests.fakes.github import FakeGitHub
from tests.pyodide.callers import (
    API,
    APP,
    Member,
    bearer,
    new_api_token,
    new_credential,
    new_node,
    send_json,
    sign_in,
)
from tests.pyodide.harness import PyodideWorker
from tests.pyodide.loopback_nodes import NodeLauncherDouble
from tests.support.authorization import (
    MATRIX,
    Auth,
    Case,
    Route,
    app_routes,
    is_json_error,
    path_params,
)
from wire.version import VERSION
from worker.api.routes.agent_artifact import artifact_key
from worker.auth.sessions import SESSION_KEY_PREFIX, sha256_hex

ROUTES = app_routes()
NODE_READY = ("POST", "/api/nodes/{node_id}/ready")


@dataclass
class World:
    worker: PyodideWorker
    launcher: NodeLauncherDouble
    admin: Member
    owner: Member
    other: Member
    closed_port: int  # where the shared node's agent "listens": refused at once
    github: FakeGitHub
    shared: dict[str, str] = field(default_factory=dict)  # path param → the owner's resource
    called: set[Route] = field(default_factory=set)


def make_workspace(world: World) -> str:
    """A pending workspace row of the owner's (LAST RESORT, as in the matrix): the shared
    one on the shared node, any later one (an owner's DELETE) on a fresh node."""
    workspace_id = "w" + secrets.token_hex(6)
    shared = "workspace_id" not in world.shared and world.shared.get("node_id")
    node_id = shared or new_node(world.worker, world.launcher, world.owner)
    world.worker.d1(
        "DATABASE",
        "INSERT INTO workspaces (id, user_id, node_id, name, repository, status, provider) "
        "VALUES (?, ?, ?, 'harness', 'https://example.com/h.git', 'pending', 'local')",
        workspace_id,
        world.owner.id,
        node_id,
    )
    return workspace_id


def make_project(world: World) -> str:
    made = send_json(
        world.worker,
        "POST",
        f"{API}/api/projects",
        # On the loopback GitHub: a task is refused for a project that is not.
        {"repository": f"{world.github.url}/harness/project.git"},
        bearer(world.owner.api_token),
    )
    assert made.status == 201, made.body
    return made.json()["id"]


def make_chat(world: World) -> str:
    """A chat of the shared project linked to the shared workspace, made through
    ProjectData's RPC as the chat flow does (its routes start a real run)."""
    chat_id = "c" + secrets.token_hex(8)
    project_id, now = world.shared["project_id"], time.time()
    rpc = world.worker.durable_object
    rpc("PROJECT_DATA", project_id, "create_chat", project_id, chat_id, world.owner.id, "h", now)
    workspace = world.shared["workspace_id"]
    rpc("PROJECT_DATA", project_id, "link", project_id, chat_id, workspace, "sh", "rh", now)
    return chat_id


def make_task(world: World) -> str:
    """A task of a project of its own, submitted through the API."""
    made = send_json(
        world.worker,
        "POST",
        f"{API}/api/projects/{make_project(world)}/tasks",
        {"message": "harness task"},
        bearer(world.owner.api_token),
    )
    assert made.status == 201, made.body
    return made.json()["id"]


def install_app(world: World) -> str:
    """The GitHub App on the owner's account with one repository, recorded in D1 as the
    matrix records it (LAST RESORT: recording needs a GitHub sign-in)."""
    account = "harness-owner"  # the owner's GitHub account
    world.github.add_repository(account, "harness-repo", branches={"main": "d" * 40})
    installation = world.github.install(account, ["harness-repo"], users={account})
    world.worker.d1(
        "DATABASE",
        "INSERT INTO github_installations "
        "(user_id, installation_id, account_login, account_type) VALUES (?, ?, ?, 'User')",
        world.owner.id,
        installation.id,
        account,
    )
    return account


# The owner's resource each path parameter names, in order (a factory may use an earlier one).
PARAMS: dict[str, Callable[[World], str]] = {
    "token_id": lambda w: new_api_token(w.worker, w.owner)[0],
    "credential_id": lambda w: new_credential(w.worker, w.owner),
    "node_id": lambda w: new_node(w.worker, w.launcher, w.owner),
    "token": lambda _: secrets.token_urlsafe(32),  # a bootstrap token nobody issued
    "workspace_id": make_workspace,
    "project_id": make_project,
    "chat_id": make_chat,  # after both: the shared project's, linked to the shared workspace
    "outbox_chat_id": make_chat,  # another, for the ingest route's batches (chat_batch)
    "task_id": make_task,
    # The chat flow's permission route (branch taskrunner): a request nobody made.
    "request_id": lambda _: "harness-request",
    "owner": install_app,
    "repo": lambda _: "harness-repo",
}


@pytest.fixture(scope="module")
def closed_port() -> Iterator[int]:
    """A loopback port bound but never listening: a connection to it is refused at once."""
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        yield bound.getsockname()[1]


@pytest.fixture(scope="module")
def node_launcher(closed_port: int) -> Iterator[NodeLauncherDouble]:
    """Nodes whose agent never answers (the table's statuses assume agentless nodes: a
    heartbeat or ready callback must not hand the shared workspace to an agent)."""
    with NodeLauncherDouble(closed_port) as double:
        yield double


@pytest.fixture(scope="module")
def world(
    development_worker: PyodideWorker,
    node_launcher: NodeLauncherDouble,
    closed_port: int,
    github: FakeGitHub,
) -> World:
    # The first user of a deployment is its admin.
    members = [sign_in(development_worker, login) for login in ("pyadmin", "pyowner", "pyother")]
    built = World(development_worker, node_launcher, *members, closed_port, github)
    new_node(development_worker, node_launcher, built.other)
    for name, make in PARAMS.items():
        built.shared[name] = make(built)
    return built


def body(world: World, route: Route, case: Case) -> dict[str, Any] | None:
    payload = case.body(world) if callable(case.body) else case.body
    if route == NODE_READY and payload is not None:
        # The table's agent port (8080) may be anyone's on a shared machine.
        return {**payload, "agent_port": world.closed_port}
    return payload


@dataclass(frozen=True)
class Call:
    caller: str
    expected: int
    origin: str  # the API's host, or the app's (where sessions and the SPA call from)
    headers: dict[str, str]

    @property
    def rightful(self) -> bool:
        return self.caller in ("owner (API token)", "owner (session)", "the node's token")


def calls(world: World, case: Case) -> list[Call]:
    """Anonymous, the wrong user or node, then the rightful caller(s) last (a DELETE)."""
    if case.auth is Auth.PUBLIC:
        return [Call("anonymous", case.anonymous, API, {})]
    anonymous = Call("anonymous", case.anonymous, APP, {"origin": APP})
    assert case.owner is not None and case.other is not None
    if case.auth is Auth.NODE:
        [their_node] = world.other.node_tokens.values()
        mine = world.owner.node_tokens[world.shared["node_id"]]
        return [
            Call("another node's token", case.other, API, bearer(their_node)),
            anonymous,
            Call("the node's token", case.owner, API, bearer(mine)),
        ]
    principal, outsider = (
        (world.admin, world.owner) if case.auth is Auth.ADMIN else (world.owner, world.other)
    )
    return [
        Call("other user", case.other, APP, outsider.session_headers()),
        anonymous,
        Call("owner (API token)", case.owner, API, principal.token_headers()),
        Call("owner (session)", case.owner, APP, principal.session_headers()),
    ]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_route(world: World, route: Route) -> None:
    method, path = route
    case = MATRIX.get(route)
    assert case is not None, f"{method} {path}: add it to MATRIX in tests/support/authorization.py"
    failures = []
    for call in calls(world, case):
        # A fresh resource for each owner's DELETE and rebuild (tests/worker/api/
        # test_authorization_matrix.py says why).
        if call.rightful and (method == "DELETE" or path.endswith("/rebuild")):
            values = {p: PARAMS[p](world) for p in path_params(path)}
        else:
            values = {p: world.shared[p] for p in path_params(path)}
        payload = body(world, route, case)
        response = send_json(
            world.worker, method, call.origin + path.format(**values), payload, call.headers
        )
        world.called.add(route)
        if response.status != call.expected:
            failures.append(
                f"{call.caller}: got {response.status}, expected {call.expected}: "
                f"{response.body[:300]!r}"
            )
        if response.status >= 400 and not is_json_error(response.body):
            failures.append(f"{call.caller}: {response.status} is not a JSON error")
    assert not failures, f"{method} {path}:\n  " + "\n  ".join(failures)


def test_sign_in_keeps_sessions_in_kv(world: World) -> None:
    stored = world.worker.kv_keys("KV", SESSION_KEY_PREFIX)

    for member in (world.admin, world.owner, world.other):
        assert SESSION_KEY_PREFIX + sha256_hex(member.session) in stored


def test_the_agent_download_reads_r2(world: World) -> None:
    artifact = secrets.token_bytes(3 << 20)  # a few MiB, as a real artifact is ~25 MB
    world.worker.r2_put("R2", artifact_key(), artifact)

    response = world.worker.fetch(f"{API}/api/agent/download")

    assert response.status == 200, response.body[:300]
    assert response.body == artifact
    assert response.headers["content-type"] == "application/gzip"
    assert VERSION in response.headers["content-disposition"]
    assert response.headers["etag"]


def test_an_anthropic_key_is_checked_then_handed_to_the_workspace_s_node(
    world: World, anthropic: ScriptedModel
) -> None:
    # After the matrix: the owner had no Anthropic key there (its 409).
    key = "sk-ant-oat01-pyodide-" + secrets.token_hex(16)
    anthropic.keys = {key}
    body = {"kind": "anthropic", "secret": key, "base_url": None}
    saved = send_json(
        world.worker, "POST", f"{APP}/api/credentials", body, world.owner.session_headers()
    )
    assert saved.status == 201, saved.body
    assert anthropic.seen_keys[-1] == key  # as a Bearer with the OAuth beta: the fake reads it so
    node_token = world.owner.node_tokens[world.shared["node_id"]]
    workspace_id = world.shared["workspace_id"]
    handed = world.worker.fetch(
        f"{API}/api/workspaces/{workspace_id}/agent-credential", headers=bearer(node_token)
    )
    assert handed.status == 200, handed.body
    assert handed.json() == {"kind": "oauth_token", "secret": key, "base_url": None}


def test_every_route_of_the_app_was_called(world: World) -> None:
    missed = [f"{method} {path}" for method, path in ROUTES if (method, path) not in world.called]
    assert not missed, f"routes never called under real Pyodide: {missed}"
