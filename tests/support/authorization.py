"""Who may call each route of the API, and what each kind of caller gets: the table that
both the authorization matrix (tests/worker/api/test_authorization_matrix.py, on the twin)
and the real-Pyodide harness (tests/pyodide/test_api_routes.py) run.

    owner         USER: the user whose resource the path names (by session and by API
                  token); ADMIN: an admin; NODE: the sam:node token of the path's node
    other         USER: another user; ADMIN: a signed-in non-admin; NODE: the sam:node
                  token of another user's node
    anonymous     no credential at all
    wrong_scope   a valid credential of the wrong kind: USER/ADMIN get sam:terminal and
                  sam:node JWTs; NODE gets the owner's API token and session, and
                  sam:agent and sam:terminal JWTs for the same node
    PUBLIC routes are called anonymously only, and say why they are public.

The statuses assume the matrix's world: the owner's shared node is still being created
(no agent behind it) and its shared workspace is pending on that node.

Adding a route: add `("METHOD", "/path/{param}"): user(owner=..., other=...)` (or
`admin`, `node`, `public`) below, and a factory for any new path parameter in each suite
(`chat_batch` reads the suite's shared `project_id` and `outbox_chat_id`).
"""

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from worker.api.app import api


class World(Protocol):
    """What a body factory may read of a suite's world: the owner's shared resources."""

    shared: dict[str, str]  # path param → the owner's resource


Route = tuple[str, str]  # (method, path template), as in the route table
# A body, or a function of the suite's World making one (fresh per call; may name its resources).
Body = dict[str, Any] | Callable[[World], dict[str, Any]] | None


class Auth(StrEnum):
    PUBLIC = "public"  # anyone; `reason` says why
    USER = "user"  # a signed-in user: session cookie or personal API token
    ADMIN = "admin"  # a signed-in admin of the deployment
    NODE = "node"  # a node's agent: Bearer <sam:node token for the path's node>


@dataclass(frozen=True)
class Case:
    auth: Auth
    owner: int | None
    other: int | None
    anonymous: int
    wrong_scope: int | None
    body: Body = None
    reason: str = ""


def public(anonymous: int, reason: str, body: Body = None) -> Case:
    assert reason, "say why anyone may call it"
    return Case(Auth.PUBLIC, None, None, anonymous, None, body, reason)


def user(owner: int, other: int, body: Body = None) -> Case:
    """Someone else's resource must be a 404 (never 403), so ids cannot be probed."""
    return Case(Auth.USER, owner, other, 401, 401, body)


def admin(owner: int, body: Body = None) -> Case:
    return Case(Auth.ADMIN, owner, 403, 401, 401, body)


def node(owner: int, body: Body = None) -> Case:
    return Case(Auth.NODE, owner, 403, 401, 401, body)


def unique(make: Callable[[str], dict[str, Any]]) -> Callable[[World], dict[str, Any]]:
    """A body made fresh for each call (for fields that must be unique per user)."""
    return lambda _world: make(secrets.token_hex(4))


HEARTBEAT = {
    "cpu_percent": 1.5,
    "memory": {"total": 8 << 30, "used": 1 << 30},
    "disk": {"total": 80 << 30, "used": 4 << 30},
    "active_workspaces": 0,
    "agent_version": "0.1.0",
}


def chat_batch(world: World) -> dict[str, Any]:
    """A MessageBatch of one new message for the shared project's chat linked to the shared
    workspace (a chat of its own: the chat-flow routes above may start the shared chat a
    fresh run, linked to another workspace)."""
    frame = {"type": "turn_ended", "seq": 1, "stop_reason": "end_turn"}
    message = {
        "id": f"matrix:{secrets.token_hex(6)}",
        "project_id": world.shared["project_id"],
        "chat_id": world.shared["outbox_chat_id"],
        "frame": frame,
        "created_at": "2026-01-01T00:00:00Z",
    }
    return {"messages": [message]}


PEM_SHAPED_CSR = "-----BEGIN CERTIFICATE REQUEST-----\nMIIB\n-----END CERTIFICATE REQUEST-----\n"

MATRIX: dict[Route, Case] = {
    # --- public -----------------------------------------------------------------------
    ("GET", "/api/openapi.json"): public(200, "the API's schema: routes, no data"),
    ("GET", "/api/docs"): public(200, "the API's documentation page"),
    ("GET", "/docs/oauth2-redirect"): public(200, "a static page of the documentation"),
    ("GET", "/.well-known/jwks.json"): public(200, "public keys, for any token verifier"),
    ("POST", "/api/errors"): public(
        202,
        "write-only error reports; nothing reads them back",
        {"source": "browser", "message": "m"},
    ),
    ("GET", "/api/auth/github/login"): public(302, "starts a sign-in (rate-limited)"),
    ("GET", "/api/auth/github/callback"): public(
        400, "ends a sign-in; checks its own state, verifier and browser"
    ),
    ("POST", "/api/auth/dev-login"): public(
        200, "signs in; development only (rate-limited)", {"login": "matrixanon"}
    ),
    ("POST", "/api/auth/logout"): public(204, "ends the caller's own session, if any"),
    ("POST", "/api/bootstrap/{token}"): public(
        401, "the one-time bootstrap token is the credential (rate-limited)"
    ),
    ("GET", "/api/deployment"): public(
        200, "what the deployment offers (sign-in methods, providers); no user data"
    ),
    ("GET", "/api/agent/download"): public(
        404, "the agent artifact holds no secret; a new node has no credential yet"
    ),
    # --- a signed-in user -------------------------------------------------------------
    ("GET", "/api/auth/me"): user(200, 200),
    ("GET", "/api/tokens"): user(200, 200),
    ("POST", "/api/tokens"): user(201, 201, {"name": "matrix"}),
    ("DELETE", "/api/tokens/{token_id}"): user(204, 404),
    ("GET", "/api/credentials"): user(200, 200),
    # OpenAI's model list (a loopback double that takes any key) checks it before it is saved.
    ("POST", "/api/credentials"): user(
        201, 201, unique(lambda n: {"kind": "openai", "label": n, "secret": "sk-matrix"})
    ),
    ("DELETE", "/api/credentials/{credential_id}"): user(204, 404),
    ("GET", "/api/nodes"): user(200, 200),
    # A real local node: an agent process, exchanging its bootstrap token (sam dev's launcher).
    ("POST", "/api/nodes"): user(201, 201, {"provider": "local"}),
    ("GET", "/api/nodes/{node_id}"): user(200, 404),
    ("DELETE", "/api/nodes/{node_id}"): user(204, 404),
    ("GET", "/api/workspaces"): user(200, 200),
    # Placed on the owner's (agentless) nodes still being created: no agent is started.
    ("POST", "/api/workspaces"): user(
        202, 202, {"repository": "https://example.com/matrix/repo.git", "provider": "local"}
    ),
    ("GET", "/api/workspaces/{workspace_id}"): user(200, 404),
    ("DELETE", "/api/workspaces/{workspace_id}"): user(204, 404),
    ("GET", "/api/workspaces/{workspace_id}/boot-log"): user(200, 404),
    # The shared workspace is pending (or, after the callbacks below ran, running): it
    # cannot be restarted (409) and stops at once (its node has no agent to call).
    ("POST", "/api/workspaces/{workspace_id}/restart"): user(409, 404),
    # A fresh workspace for each owner's call, still pending: nothing to rebuild yet (409).
    ("POST", "/api/workspaces/{workspace_id}/rebuild"): user(409, 404),
    ("POST", "/api/workspaces/{workspace_id}/stop"): user(200, 404),
    # Projects and their chats' reads; the shared chat is linked to the shared workspace.
    ("GET", "/api/projects"): user(200, 200),
    ("POST", "/api/projects"): user(201, 201, {"repository": "https://example.com/matrix/p.git"}),
    ("GET", "/api/projects/{project_id}"): user(200, 404),
    ("PATCH", "/api/projects/{project_id}"): user(200, 404, {"name": "renamed"}),
    ("DELETE", "/api/projects/{project_id}"): user(204, 404),
    ("GET", "/api/projects/{project_id}/chats"): user(200, 404),
    ("GET", "/api/projects/{project_id}/chats/{chat_id}"): user(200, 404),
    ("GET", "/api/projects/{project_id}/chats/{chat_id}/messages"): user(200, 404),
    ("GET", "/api/chats"): user(200, 200),
    # The chat flow. The owner has no Anthropic key, so every run it starts fails at once,
    # before a workspace is made; a follow-up to the shared chat (linked to no run of its
    # own) starts a fresh one, which the run route then shows.
    ("POST", "/api/projects/{project_id}/chats"): user(201, 404, {"message": "matrix"}),
    ("POST", "/api/projects/{project_id}/chats/{chat_id}/messages"): user(
        202, 404, {"text": "matrix"}
    ),
    ("GET", "/api/projects/{project_id}/chats/{chat_id}/run"): user(200, 404),
    ("POST", "/api/projects/{project_id}/chats/{chat_id}/stop"): user(200, 404),
    # Tasks: the owner's submit starts a run that fails (no Anthropic key). A cancel answers
    # the task as it is then: cancelled, or failed if its run failed first.
    ("POST", "/api/projects/{project_id}/tasks"): user(201, 404, {"message": "matrix"}),
    ("GET", "/api/projects/{project_id}/tasks"): user(200, 404),
    ("GET", "/api/tasks/{task_id}"): user(200, 404),
    ("POST", "/api/tasks/{task_id}/cancel"): user(200, 404),
    # Only an active run's agent asks for permissions: the owner's has none to answer.
    ("POST", "/api/projects/{project_id}/chats/{chat_id}/permissions/{request_id}"): user(
        409, 404, {"option_id": "allow"}
    ),
    # A terminal needs a running workspace: the owner's is not (409), another's is unknown.
    ("POST", "/api/terminal/token"): user(
        409, 404, lambda w: {"workspace_id": w.shared["workspace_id"]}
    ),
    # GitHub App (the loopback GitHub's): the owner's installation reaches {owner}/{repo};
    # the setup callback without an installation_id is refused before anything is looked up.
    ("GET", "/api/github/install"): user(302, 302),
    ("GET", "/api/github/setup"): user(400, 400),
    ("GET", "/api/github/installations"): user(200, 200),
    ("GET", "/api/github/repositories"): user(200, 200),
    ("GET", "/api/github/repositories/{owner}/{repo}/branches"): user(200, 404),
    # --- an admin ---------------------------------------------------------------------
    ("POST", "/api/admin/signing-keys/rotate"): admin(200),
    # --- a node's agent ---------------------------------------------------------------
    ("POST", "/api/nodes/{node_id}/ready"): node(200, {"agent_port": 8080, "version": "0.1.0"}),
    # With the shared workspace's activity (worker/workspaces/idle.py records it).
    ("POST", "/api/nodes/{node_id}/heartbeat"): node(
        200,
        lambda w: {
            **HEARTBEAT,
            "workspaces": [{"id": w.shared["workspace_id"], "idle_seconds": 5}],
        },
    ),
    # The shared node is a local one: its certificate comes from the launcher, not Cloudflare.
    ("POST", "/api/nodes/{node_id}/tls-certificate"): node(409, {"csr": PEM_SHAPED_CSR}),
    # Workspace callbacks: the sam:node token of the workspace's node (the shared node_id).
    ("POST", "/api/workspaces/{workspace_id}/boot-log"): node(
        200, {"step": "clone", "status": "started", "message": "cloning"}
    ),
    ("POST", "/api/workspaces/{workspace_id}/provisioning-failed"): node(
        200, {"step": "clone", "message": "clone failed", "detail": None, "hint": "check it"}
    ),
    # The node agent's chat outbox: one new message into the shared (linked) chat per call.
    ("POST", "/api/workspaces/{workspace_id}/chat-messages"): node(200, lambda w: chat_batch(w)),
    # The owner never stores an Anthropic key here (the credential cases use openai).
    ("GET", "/api/workspaces/{workspace_id}/agent-credential"): node(409),
    # The matrix's workspace is not on GitHub: its node is told there is no token for it.
    ("POST", "/api/workspaces/{workspace_id}/git-token"): node(409),
    ("POST", "/api/workspaces/{workspace_id}/ready"): node(
        200, {"state": "running", "container_id": "c1", "remote_user": "sam", "backend": "host"}
    ),
}


def app_routes() -> list[Route]:
    """(method, path) of every route the deployed API answers, from its own table."""
    app = api
    while not isinstance(app, FastAPI):  # Cors(BodyLimit(FastAPI))
        app = app.app
    found = set()
    for route in iter_route_contexts(app.routes):
        for method in route.methods or ():
            if method != "HEAD":  # answered as GET
                found.add((method, route.path))
    return sorted(found, key=lambda r: (r[1], r[0]))


def path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{") and part.endswith("}")]


def is_json_error(body: bytes) -> bool:
    """What every error answer must be: a JSON object of exactly `error` and `message`."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return isinstance(parsed, dict) and set(parsed) == {"error", "message"}
