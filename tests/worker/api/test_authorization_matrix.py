"""The authorization matrix: every route of the API, called as every kind of caller.

The routes come from the app's own route table (`app_routes()`), so this file cannot fall
behind: a route without an entry in MATRIX (tests/support/authorization.py, shared with the
real-Pyodide harness) fails, saying which cases to add. Each entry names who the route is
for (`Auth`) and what each caller gets (the callers are described there), and is run
against the real edge over HTTP.

Besides the statuses, for every caller but the owner: the answer holds none of the
owner's ids, and the owner's rows in D1 are unchanged afterwards; every error is JSON.

Adding a route: add its entry to MATRIX, and a factory in PARAMS below for any new path
parameter.
"""

import asyncio
import json
import secrets
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from durable_objects.chat_log import ChatLog
from durable_objects.project_data import ProjectData
from durable_objects.project_schema import migrate
from tests.fakes.github import FakeGitHub
from tests.fakes.openai import OpenAiModels
from tests.support.authorization import (
    MATRIX,
    Auth,
    Case,
    Route,
    app_routes,
    is_json_error,
    path_params,
)
from tests.support.edge import Edge, running_edge, with_secrets
from tests.support.wait import bearer
from twin.alarms import AlarmScheduler
from twin.clock import SystemClock
from twin.d1 import D1Database
from twin.durable_objects import DurableObjectNamespace
from twin.env import Env
from twin.storage import DurableObjectStorage
from worker.api.ratelimit import LIMITS
from worker.auth import grants, scoped_tokens
from worker.deployment import Deployment

ROUTES = app_routes()


# --- the deployment and its callers ----------------------------------------------------------


@dataclass
class Member:
    id: str
    login: str
    session: str
    api_token: str
    nodes: list[str] = field(default_factory=list)


@dataclass
class World:
    edge: Edge
    minter: Deployment
    admin: Member
    owner: Member
    other: Member
    github: FakeGitHub
    shared: dict[str, str] = field(default_factory=dict)  # path param → the owner's resource


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture(scope="module")
def openai() -> Iterator[OpenAiModels]:
    with OpenAiModels() as fake:
        yield fake


@pytest.fixture(scope="module")
def world(
    tmp_path_factory: pytest.TempPathFactory, github: FakeGitHub, openai: OpenAiModels
) -> Iterator[World]:
    data_dir: Path = tmp_path_factory.mktemp("matrix") / ".sam"
    variables = {
        "SAM_OPENAI_API_URL": openai.url,
        **github.vars(),
        **github.app_public_vars(),
        # Limits are tested in test_ratelimit.py; here they would only get in the way.
        "SAM_RATE_LIMITS": ",".join(f"{name}=100000/60" for name in LIMITS),
    }
    with_secrets(data_dir, github.app_secrets())
    with running_edge(data_dir, vars=variables) as edge:
        secrets_file = json.loads((edge.data_dir / "dev-secrets.json").read_text())
        database = D1Database(edge.data_dir / "d1" / "sam.sqlite")
        minter = Deployment.of(
            Env(
                {
                    "DATABASE": database,
                    "SAM_DOMAIN": edge.domain,
                    "SAM_ENCRYPTION_KEY": secrets_file["SAM_ENCRYPTION_KEY"],
                }
            )
        )
        # The first user of a deployment is its admin.
        members = [join(edge, login) for login in ("matrixadmin", "matrixowner", "matrixother")]
        built = World(edge, minter, *members, github)
        assert (admin_me := whoami(edge, built.admin)) and admin_me["is_admin"]
        assert not whoami(edge, built.owner)["is_admin"]
        for member in (built.owner, built.other):
            member.nodes.append(make_node(edge, member))
        for name, make in PARAMS.items():  # in order: a factory may use an earlier one
            built.shared[name] = make(built)
        yield built
        database.close()


def join(edge: Edge, login: str) -> Member:
    with edge.client("app") as client:
        signed_in = client.post(
            "/api/auth/dev-login", json={"login": login}, headers={"origin": app_origin(edge)}
        )
        assert signed_in.status_code == 200, signed_in.text
        session = signed_in.cookies["sam_session"]
        member = Member(signed_in.json()["id"], login, session, "")
        member.api_token = new_api_token(edge, member)[1]
        return member


def app_origin(edge: Edge) -> str:
    return f"http://{edge.host('app')}"


def whoami(edge: Edge, member: Member) -> dict[str, Any]:
    with edge.client("api") as client:
        me = client.get("/api/auth/me", headers=bearer(member.api_token))
    assert me.status_code == 200, me.text
    return me.json()


def session_headers(edge: Edge, member: Member) -> dict[str, str]:
    return {"cookie": f"sam_session={member.session}", "origin": app_origin(edge)}


def new_api_token(edge: Edge, member: Member) -> tuple[str, str]:
    """(id, token) of a fresh personal API token of `member`, made through the API."""
    with edge.client("app") as client:
        made = client.post(
            "/api/tokens", json={"name": "matrix"}, headers=session_headers(edge, member)
        )
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["token"]


def new_credential(edge: Edge, member: Member) -> str:
    body = {"kind": "openai", "label": secrets.token_hex(4), "secret": "sk-matrix-secret"}
    with edge.client("app") as client:
        made = client.post("/api/credentials", json=body, headers=session_headers(edge, member))
    assert made.status_code == 201, made.text
    return made.json()["id"]


def make_node(edge: Edge, member: Member) -> str:
    """A node row of `member`, written straight into the edge's D1 file.

    LAST RESORT, on purpose: creating a node through POST /api/nodes starts a real agent
    (local provider) or needs the Hetzner and DNS fakes, whose callbacks would race the
    matrix. The row is what the routes read; the agent's side is tested elsewhere.
    """
    node_id = "n" + secrets.token_hex(8)
    with closing(sqlite3.connect(edge.data_dir / "d1" / "sam.sqlite")) as db:
        db.execute(
            "INSERT INTO nodes (id, user_id, name, provider, status, agent_host) "
            "VALUES (?, ?, ?, 'local', 'creating', '127.0.0.1')",
            (node_id, member.id, f"matrix-{node_id[-4:]}"),
        )
        db.commit()
    return node_id


def mint(world: World, audience: scoped_tokens.Audience, node_id: str) -> str:
    """A real token of `audience` from the edge's own signing key (D1 + its dev secret)."""
    match audience:
        case scoped_tokens.Audience.TERMINAL:
            grant = grants.for_session(world.owner.session)
            minted = scoped_tokens.mint_terminal_token(
                world.minter, world.owner.id, node_id, "wmatrix", grant
            )
        case scoped_tokens.Audience.WORKSPACE:
            minted = scoped_tokens.mint_workspace_token(world.minter, node_id, "wmatrix")
        case scoped_tokens.Audience.AGENT:
            minted = scoped_tokens.mint_agent_token(world.minter, node_id)
        case scoped_tokens.Audience.NODE:
            minted = scoped_tokens.mint_node_token(world.minter, node_id)
    return asyncio.run(minted).token


def make_workspace(world: World) -> str:
    """A pending workspace row of the owner's on the shared node (LAST RESORT, like
    make_node: a real one needs an agent; workspaces are tested in test_workspaces.py)."""
    workspace_id = "w" + secrets.token_hex(6)
    # The shared one goes on the shared node (its callbacks' tokens are that node's); one
    # for the owner's DELETE on a node of its own, with no agent that could be called.
    shared = "workspace_id" not in world.shared and world.shared.get("node_id")
    node_id = shared or make_node(world.edge, world.owner)
    with closing(sqlite3.connect(world.edge.data_dir / "d1" / "sam.sqlite")) as db:
        db.execute(
            "INSERT INTO workspaces (id, user_id, node_id, name, repository, status, provider) "
            "VALUES (?, ?, ?, 'matrix', 'https://example.com/m.git', 'pending', 'local')",
            (workspace_id, world.owner.id, node_id),
        )
        db.commit()
    return workspace_id


def make_project(world: World) -> str:
    with world.edge.client("api") as client:
        made = client.post(
            "/api/projects",
            # On the loopback GitHub: a task is refused for a project that is not.
            json={"repository": f"{world.github.url}/matrix/project.git"},
            headers=bearer(world.owner.api_token),
        )
    assert made.status_code == 201, made.text
    return made.json()["id"]


def make_task(world: World) -> str:
    """A task of a project of its own, submitted through the API."""
    with world.edge.client("api") as client:
        made = client.post(
            f"/api/projects/{make_project(world)}/tasks",
            json={"message": "matrix task"},
            headers=bearer(world.owner.api_token),
        )
    assert made.status_code == 201, made.text
    return made.json()["id"]


def make_chat(world: World) -> str:
    """A chat of the shared project, linked to the shared workspace (LAST RESORT, like
    make_node: chats come from the chat flow's routes, which start a real run). Written into
    the project's ProjectData storage file, by ProjectData's own queries, before anything
    has woken that object in the edge."""
    chat_id = "c" + secrets.token_hex(8)
    project_id = world.shared["project_id"]
    directory = world.edge.data_dir / "do" / "ProjectData"
    namespace = DurableObjectNamespace(
        ProjectData, directory, lambda: None, AlarmScheduler(directory.parent, SystemClock())
    )
    path = directory / f"{namespace.idFromName(project_id).toString()}.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    storage = DurableObjectStorage(path)
    migrate(storage)
    chats = ChatLog(storage)
    now = time.time()

    def write() -> None:
        chats.bind(project_id)
        chats.create_chat(chat_id, world.owner.id, "matrix", now)
        chats.link(chat_id, world.shared["workspace_id"], "smatrix", "rmatrix", now)

    storage.transactionSync(write)
    storage.close()
    return chat_id


MATRIX_REPOSITORY = "matrix-repo"


def install_app(edge: Edge, member: Member, github: FakeGitHub) -> str:
    """The GitHub App installed on `member`'s account with one repository, recorded for them
    in D1 (LAST RESORT, like make_node: recording goes through GitHub sign-in, which the
    matrix's dev sign-in users do not have; tests/worker/github/test_setup.py covers it)."""
    github.add_repository(member.login, MATRIX_REPOSITORY, branches={"main": "c" * 40})
    installation = github.install(member.login, [MATRIX_REPOSITORY], users={member.login})
    with closing(sqlite3.connect(edge.data_dir / "d1" / "sam.sqlite")) as db:
        db.execute(
            "INSERT INTO github_installations "
            "(user_id, installation_id, account_login, account_type) VALUES (?, ?, ?, 'User')",
            (member.id, installation.id, member.login),
        )
        db.commit()
    return member.login


# Path parameters: a factory for the owner's resource each one names. Non-owners are
# handed the owner's shared one; the owner gets a fresh one for a DELETE.
PARAMS: dict[str, Callable[[World], str]] = {
    "token_id": lambda w: new_api_token(w.edge, w.owner)[0],
    "credential_id": lambda w: new_credential(w.edge, w.owner),
    "node_id": lambda w: make_node(w.edge, w.owner),
    "token": lambda _: secrets.token_urlsafe(32),  # a bootstrap token nobody issued
    "workspace_id": make_workspace,  # after node_id: it goes on the shared node
    "project_id": make_project,
    "chat_id": make_chat,  # after both: it is the shared project's, linked to the workspace
    "outbox_chat_id": make_chat,  # another, for the ingest route's batches (chat_batch)
    "task_id": make_task,  # after the chats: it wakes its own project's ProjectData only
    "request_id": lambda _: "matrix-request",  # a permission request nobody made
    "owner": lambda w: install_app(w.edge, w.owner, w.github),
    "repo": lambda _: MATRIX_REPOSITORY,
}
# Not secrets of the owner's: a bootstrap token nobody issued; a permission request nobody
# made; a repository's name, which the caller itself puts in the path (and a refusal may
# repeat).
NOT_OWNED = {"token", "request_id", "owner", "repo"}


# --- calling a route ----------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    caller: str  # "owner (session)", "other", ...: for the failure message
    expected: int
    host: str
    headers: dict[str, str]


def calls(world: World, case: Case, path_node: str) -> list[Call]:
    """Every caller of a route of this kind, the owner last (it may delete the resource)."""
    edge, owner, other = world.edge, world.owner, world.other
    origin = {"origin": app_origin(edge)}  # so that CSRF is never why a caller is refused
    if case.auth is Auth.PUBLIC:
        return [Call("anonymous", case.anonymous, "api", {})]
    anonymous = Call("anonymous", case.anonymous, "app", origin)
    assert case.owner is not None and case.other is not None and case.wrong_scope is not None
    if case.auth is Auth.NODE:
        their_node = other.nodes[0]
        return [
            Call("another node's token", case.other, "api", bearer(mint_node(world, their_node))),
            anonymous,
            Call("owner's API token", case.wrong_scope, "api", bearer(owner.api_token)),
            Call("owner's session", case.wrong_scope, "app", session_headers(edge, owner)),
            Call("sam:agent token", case.wrong_scope, "api", bearer(mint_agent(world, path_node))),
            Call(
                "sam:terminal token",
                case.wrong_scope,
                "api",
                bearer(mint(world, scoped_tokens.Audience.TERMINAL, path_node)),
            ),
            Call("the node's token", case.owner, "api", bearer(mint_node(world, path_node))),
        ]
    principal, outsider = (world.admin, owner) if case.auth is Auth.ADMIN else (owner, other)
    wrong = [
        Call(
            f"sam:{audience} token",
            case.wrong_scope,
            "api",
            bearer(mint(world, scoped_tokens.Audience(f"sam:{audience}"), owner.nodes[0])),
        )
        for audience in ("terminal", "node")
    ]
    return [
        Call("other user", case.other, "app", session_headers(edge, outsider)),
        anonymous,
        *wrong,
        Call("owner (API token)", case.owner, "api", bearer(principal.api_token)),
        Call("owner (session)", case.owner, "app", session_headers(edge, principal)),
    ]


def mint_node(world: World, node_id: str) -> str:
    return mint(world, scoped_tokens.Audience.NODE, node_id)


def mint_agent(world: World, node_id: str) -> str:
    return mint(world, scoped_tokens.Audience.AGENT, node_id)


def owner_rows(world: World) -> dict[str, list[tuple[Any, ...]]]:
    """The owner's rows in D1, minus what merely using them changes.

    Nodes: only those made here (rows with no agent behind them); nodes that POST
    /api/nodes created change on their own, as their agents call back.
    """
    volatile = {"last_used_at", "updated_at", "health"}
    ours = [*world.owner.nodes, *(v for k, v in world.shared.items() if k == "node_id")]
    marks = ", ".join("?" * len(ours))
    rows = {}
    with closing(sqlite3.connect(world.edge.data_dir / "d1" / "sam.sqlite")) as db:
        for table, condition, bindings in (
            ("users", "id = ?", ()),
            ("api_tokens", "user_id = ?", ()),
            ("credentials", "user_id = ?", ()),
            ("nodes", f"user_id = ? AND id IN ({marks})", ours),
            ("workspaces", "user_id = ?", ()),
            ("projects", "user_id = ?", ()),
            ("chats", "user_id = ?", ()),
        ):
            cursor = db.execute(
                f"SELECT * FROM {table} WHERE {condition} ORDER BY 1",
                (world.owner.id, *bindings),
            )
            keep = [i for i, d in enumerate(cursor.description) if d[0] not in volatile]
            rows[table] = [tuple(row[i] for i in keep) for row in cursor.fetchall()]
    return rows


def owner_secrets(world: World) -> list[str]:
    """What no other caller may ever see: the owner's ids and its shared resources."""
    owned = [value for name, value in world.shared.items() if name not in NOT_OWNED]
    return [world.owner.id, world.owner.api_token, *world.owner.nodes, *owned]


@pytest.mark.parametrize("route", ROUTES, ids=lambda r: f"{r[0]} {r[1]}")
def test_route(world: World, route: Route) -> None:
    method, path = route
    case = MATRIX.get(route)
    if case is None:
        pytest.fail(
            f"{method} {path} has no authorization cases. Add an entry to MATRIX in "
            f"{Path(__file__).name}: who may call it (public/user/admin/node) and what the "
            "owner, another user, an anonymous caller and a wrong-scope token get."
        )
    missing = [p for p in path_params(path) if p not in PARAMS]
    assert not missing, f"add a factory for path parameter(s) {missing} to PARAMS"
    before = owner_rows(world)
    failures = []
    for call in calls(world, case, world.shared["node_id"]):
        is_owner = call.caller.startswith(("owner (", "the node's"))
        if is_owner and before is not None:
            changed = [t for t, rows in owner_rows(world).items() if rows != before[t]]
            if changed:
                failures.append(f"the owner's rows in {changed} changed after the other callers")
            before = None  # the owner itself may change them
        # A fresh resource for each owner's DELETE, and for each rebuild (the first owner's
        # would change the state the second one meets).
        if is_owner and (method == "DELETE" or path.endswith("/rebuild")):
            values = {p: PARAMS[p](world) for p in path_params(path)}
        else:
            values = {p: world.shared[p] for p in path_params(path)}
        target = path.format(**values)
        payload = case.body(world) if callable(case.body) else case.body
        response = send(world.edge, method, target, payload, call)
        if response.status_code != call.expected:
            failures.append(
                f"{call.caller}: got {response.status_code}, expected {call.expected}: "
                f"{response.text[:300]}"
            )
        if response.status_code >= 400 and not is_json_error(response.content):
            failures.append(f"{call.caller}: {response.status_code} is not a JSON error")
        if not is_owner:
            # Echoing the id the caller itself sent is no leak; anything else of the owner's is.
            leaked = [s for s in owner_secrets(world) if s in response.text and s not in target]
            if leaked:
                failures.append(f"{call.caller}: the answer holds the owner's {leaked}")
    assert not failures, f"{method} {path}:\n  " + "\n  ".join(failures)


def send(
    edge: Edge, method: str, path: str, payload: dict[str, Any] | None, call: Call
) -> httpx.Response:
    with edge.client(call.host, follow_redirects=False) as client:
        return client.request(method, path, json=payload, headers=call.headers)


def test_every_route_has_cases() -> None:
    """The table and the app agree both ways: no route unlisted, no stale entry."""
    unlisted = [f"{m} {p}" for m, p in ROUTES if (m, p) not in MATRIX]
    stale = [f"{m} {p}" for m, p in MATRIX if (m, p) not in ROUTES]
    assert not unlisted, f"routes without authorization cases (add them to MATRIX): {unlisted}"
    assert not stale, f"MATRIX lists routes the app does not have (remove or fix): {stale}"
    for (method, path), case in MATRIX.items():
        if case.auth is Auth.USER and "{" in path:
            assert case.other == 404, f"{method} {path}: another user's resource must be 404"
