"""The `ws-{id}.{domain}` surface: a workspace's node agent, reached through the edge.

    browser ─▶ ws-{id}.{domain}/workspaces/{id}/terminal/ws?token=…     WebSocket
               ws-{id}.{domain}/workspaces/{id}/boot-log/ws?token=…     WebSocket
               ws-{id}.{domain}/workspaces/{id}[/terminals|/boot-log]   HTTP GET
               ws-{id}.{domain}/workspaces/{id}/agent-sessions          GET (list), POST (create)
                 …/agent-sessions/{sid}                                 GET
                 …/agent-sessions/{sid}/prompt|cancel|stop              POST
                 …/agent-sessions/{sid}/ws?after=N&token=…              WebSocket

Every refusal is decided here, before any upstream call, as a domain error that the
edge's boundary answers as JSON (statuses as worker/http_errors.py maps them):

    0. CORS (worker/edge/cors.py): the app's preflight is answered first; any other 403.
       Answers to the app's origin, refusals too, carry its Access-Control-Allow-Origin.

    1. a WebSocket's Origin: the app origin, or none at all for a non-browser client
       that brings a token (a page on another origin never gets a socket)       403
    2. who: `?token=` a sam:terminal token for this workspace (verified as the agent
       will: ES256, kid, iss, aud, exp), whose session or API token still stands
       (worker/auth/grants.py: a token outlives no sign-out)                     401 / 403
       or the workspace owner's session cookie (a fresh terminal token is minted);
       a cookie counts on a WebSocket or a POST only with the app's Origin       403
    3. the path: one of this workspace's routes above, with a well-formed session id,
       nothing else                                                              404 / 405
    4. a POST's body: at most MAX_BODY_BYTES                                     413
    5. the workspace: unknown or another user's are the same 404; stopped 409 (how to start
       it); not yet placed 409
    6. the node's agent: unreachable 502

Then the request goes to `{node.agent_url}{path}` with only what the agent needs: no
cookies and no client Authorization, and never the client's `token` query parameter. A
WebSocket carries the verified (or minted) terminal token: as `?token=` for the terminal
and boot log, as `Authorization: Bearer` for an agent session's viewer (the agent takes
either). HTTP requests carry a sam:agent token instead, as the agent opens its workspace
routes to the control plane only (the proxy has already confined them to this owner's
workspace and to the routes above). WebSockets use the runtime's `fetch` with `Upgrade:
websocket` and hand the upstream socket back in a `101`, so the same code runs on
Cloudflare and on the local edge.
"""

import logging
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qsl, urlencode, urlsplit

from pydantic import TypeAdapter, ValidationError

from wire.agent_session import MAX_BODY_BYTES, SessionId
from worker.auth import grants, scoped_tokens, sessions
from worker.auth.scoped_tokens import Audience
from worker.deployment import Deployment
from worker.edge import cors
from worker.errors import (
    Conflict,
    Forbidden,
    MethodNotAllowed,
    NotFound,
    SamError,
    TooLarge,
    Unauthorized,
    UpstreamFailed,
)
from worker.http_errors import error_reply
from worker.logs import event
from worker.platform import Request, Response, fetch, response_web_socket, with_headers
from worker.states import WorkspaceStatus
from worker.workspaces import service as workspaces

log = logging.getLogger("sam.proxy")

TOKEN_PARAM = "token"
CLIENT_IP_HEADER = "cf-connecting-ip"
READ = frozenset({"GET", "HEAD"})
POST = frozenset({"POST"})
# The agent's routes a browser may reach, relative to /workspaces/{id}, with their methods;
# SESSION_ID stands for an agent session id (wire.agent_session.SessionId).
SESSION_ID = "{sid}"
SESSIONS = "/agent-sessions"
HTTP_ROUTES: dict[str, frozenset[str]] = {
    "": READ,
    "/terminals": READ,
    "/boot-log": READ,
    SESSIONS: READ | POST,
    f"{SESSIONS}/{SESSION_ID}": READ,
    f"{SESSIONS}/{SESSION_ID}/prompt": POST,
    f"{SESSIONS}/{SESSION_ID}/cancel": POST,
    f"{SESSIONS}/{SESSION_ID}/stop": POST,
}
WEBSOCKET_ROUTES = frozenset({"/terminal/ws", "/boot-log/ws", f"{SESSIONS}/{SESSION_ID}/ws"})
# Routes whose WebSocket gets its terminal token as a header, not in the query.
HEADER_TOKEN_WEBSOCKETS = frozenset({f"{SESSIONS}/{SESSION_ID}/ws"})
# The agent's own cap on a request body (wire/agent_session.py MAX_BODY_BYTES, imported
# above): anything larger is refused here rather than carried to the node to be refused there.
# A browser's request headers worth passing on; everything else (Cookie, Authorization,
# Origin, the client's Host, Sec-WebSocket-Key...) stays here.
FORWARDED_HEADERS = ("accept", "accept-language", "user-agent", "if-none-match", "content-type")
_SESSION_ID = TypeAdapter(SessionId)
# Where a workspace's traffic may go: a node still provisioning can stream its boot log.
PROXIED_STATUSES = frozenset({WorkspaceStatus.CREATING, WorkspaceStatus.RUNNING})


@dataclass(frozen=True)
class Caller:
    """Who is asking: the user, and the terminal token the agent will see."""

    user_id: str
    token: str | None  # a verified ?token=; None for a session (minted once placed)
    node_id: str | None  # the token's node claim
    grant: str  # the session or API token behind it (worker/auth/grants.py)


async def handle(request: Request, deployment: Deployment, workspace_id: str) -> Response:
    """Answer a request to `ws-{workspace_id}.{domain}`."""
    app_origin = f"{urlsplit(request.url).scheme}://app.{deployment.config.domain}"
    from_app = request.headers.get("origin") == app_origin
    try:
        if request.method.value == "OPTIONS":
            return cors.preflight(request, app_origin)
        response = await _proxy(request, deployment, workspace_id, app_origin)
    except SamError as exc:
        event(log, "proxy.refused", workspace=workspace_id, error=exc.code)
        if not from_app:
            raise  # answered by the edge's error boundary (worker/edge/router.py)
        # The same answer, readable by the app's page (without the header a browser hides
        # a refusal as a network error).
        status, body, headers = error_reply(exc)
        response = Response.from_json(body, status, headers=headers or None)
    if from_app and response.status != 101:
        response = with_headers(response, cors.allow(app_origin))
    return response


async def _proxy(
    request: Request, deployment: Deployment, workspace_id: str, app_origin: str
) -> Response:
    url = urlsplit(request.url)
    method = request.method.value
    websocket = request.headers.get("upgrade", "").lower() == "websocket"
    query = parse_qsl(url.query, keep_blank_values=True)
    offered = [value for name, value in query if name == TOKEN_PARAM]
    changes = websocket or method in POST
    if changes:
        _check_origin(request, app_origin)
    # A cookie is ambient: on a WebSocket or a POST it counts only from the app's own pages
    # (the API's rule minus its Sec-Fetch-Site fallback, which here vouches for ws-{id}).
    cookie_allowed = not changes or request.headers.get("origin") == app_origin
    caller = await _authenticate(
        request, deployment, workspace_id, offered, cookie_allowed, app_origin
    )
    route = _check_path(method, workspace_id, url.path, websocket)
    body = await _bounded_body(request) if method in POST else None
    found = await workspaces.route_for(deployment, workspace_id)
    if found is None or found.workspace.user_id != caller.user_id:
        raise _not_found(workspace_id)
    workspace, node = found
    _check_status(workspace.id, workspace.status, workspace.error_message)
    if node is None or workspace.dispatched_at is None:
        raise Conflict(
            "workspace_not_ready",
            f"Workspace {workspace_id} is still being placed on a node; follow "
            f"GET /api/workspaces/{workspace_id}/boot-log and retry once it is running.",
        )
    if caller.node_id is not None and caller.node_id != node.id:
        raise scoped_tokens.WrongScope(
            f"it is for node {caller.node_id!r}, where this workspace no longer runs"
        )
    if node.agent_url is None:
        raise _unreachable(workspace_id, "its node's agent has not reported where it listens")
    rest = [(name, value) for name, value in query if name != TOKEN_PARAM]
    headers = _forwarded_headers(request, url.scheme)
    if websocket:
        token = (
            caller.token
            or (
                await scoped_tokens.mint_terminal_token(
                    deployment, caller.user_id, node.id, workspace.id, caller.grant
                )
            ).token
        )
        if route in HEADER_TOKEN_WEBSOCKETS:
            headers["authorization"] = f"Bearer {token}"
        else:
            rest.append((TOKEN_PARAM, token))
        target = _target(node.agent_url, url.path, rest)
        return await _websocket(target, headers, request, workspace_id)
    agent = await scoped_tokens.mint_agent_token(deployment, node.id)
    headers["authorization"] = f"Bearer {agent.token}"
    target = _target(node.agent_url, url.path, rest)
    return await _http(target, headers, method, body, workspace_id)


# --- the checks, in order ----------------------------------------------------------------


def _check_origin(request: Request, app_origin: str) -> None:
    """Cross-site request forgery and WebSocket hijacking: browsers always send Origin on a
    WebSocket and a POST, so any other origin is a page elsewhere riding on the user's
    credentials. No Origin at all is a non-browser client (CLI, tests), which must then
    bring a token."""
    origin = request.headers.get("origin")
    if origin is None or origin == app_origin:
        return
    raise _forbidden_origin(app_origin)


def _forbidden_origin(app_origin: str) -> Forbidden:
    return Forbidden(
        "forbidden_origin",
        f"WebSockets and POSTs to a workspace may only come from {app_origin}, or from a "
        "client without an Origin header that sends ?token= from POST /api/terminal/token.",
    )


async def _authenticate(
    request: Request,
    deployment: Deployment,
    workspace_id: str,
    offered: list[str],
    cookie_allowed: bool,
    app_origin: str,
) -> Caller:
    if offered:
        if len(offered) > 1:
            raise scoped_tokens.InvalidToken("send one token parameter, not several")
        claims = await scoped_tokens.verify(
            deployment, offered[0], Audience.TERMINAL, workspace=workspace_id
        )
        # Signed out (or the API token revoked) since it was minted: refused from then on.
        await grants.check_live(deployment, claims["grant"])
        return Caller(claims["sub"], offered[0], claims["node"], claims["grant"])
    session_id = request_cookie(request, sessions.SESSION_COOKIE)
    if session_id:
        if not cookie_allowed:
            raise _forbidden_origin(app_origin)
        env = deployment.env
        user = await sessions.user_for_session(env.KV, env.DATABASE, session_id, deployment.clock)
        if user is not None:
            return Caller(user.id, None, None, grants.for_session(session_id))
    raise Unauthorized(
        "unauthorized",
        f"Workspace {workspace_id} needs a terminal token: POST /api/terminal/token "
        f'{{"workspace_id": "{workspace_id}"}} and pass it as ?token=.',
    )


def _check_path(method: str, workspace_id: str, path: str, websocket: bool) -> str:
    """The route `path` asks for (a key of HTTP_ROUTES or WEBSOCKET_ROUTES), if `method`
    may use it; a session id in it must be well formed, as nothing else is forwarded."""
    prefix = f"/workspaces/{workspace_id}"
    route = _route(path[len(prefix) :]) if path.startswith(prefix) else None
    if websocket and route in WEBSOCKET_ROUTES and method == "GET":
        return route
    allowed = None if websocket or route is None else HTTP_ROUTES.get(route)
    if allowed is not None:
        if method in allowed:
            return route
        raise MethodNotAllowed(
            "method_not_allowed",
            f"{method} is not allowed here ({', '.join(sorted(allowed - {'HEAD'}))} only); "
            f"change a workspace through /api/workspaces/{workspace_id}.",
        )
    served = [f"{'/'.join(sorted(m - {'HEAD'}))} {prefix}{r}" for r, m in HTTP_ROUTES.items()]
    served += [f"{prefix}{r} (WebSocket)" for r in sorted(WEBSOCKET_ROUTES)]
    raise NotFound(
        "not_found", f"Nothing is served at {path}. This host serves: {', '.join(served)}."
    )


def _route(rest: str) -> str:
    """`rest` with its agent session id, if any, replaced by SESSION_ID."""
    if not rest.startswith(f"{SESSIONS}/"):
        return rest
    session_id, slash, tail = rest[len(SESSIONS) + 1 :].partition("/")
    try:
        _SESSION_ID.validate_python(session_id)
    except ValidationError:
        raise NotFound(
            "agent_session_not_found",
            f"{session_id[:80]!r} is not an agent session id (letters, digits, '-' and '_'); "
            "list the workspace's sessions with GET …/agent-sessions.",
        ) from None
    return f"{SESSIONS}/{SESSION_ID}{slash}{tail}"


async def _bounded_body(request: Request) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise _too_large()
    body = await request.bytes()
    if len(body) > MAX_BODY_BYTES:  # a chunked body declares no length
        raise _too_large()
    return body


def _too_large() -> TooLarge:
    return TooLarge(
        "payload_too_large",
        f"The body is over {MAX_BODY_BYTES} bytes, more than a workspace's agent accepts: "
        "send less (a long prompt can be split over several turns).",
    )


def _check_status(workspace_id: str, status: str, error_message: str | None) -> None:
    if status in PROXIED_STATUSES:
        return
    if status in (WorkspaceStatus.STOPPED, WorkspaceStatus.STOPPING):
        raise Conflict(
            "workspace_stopped",
            f"Workspace {workspace_id} is {status}. Start it again with "
            f"POST /api/workspaces/{workspace_id}/restart, then reconnect.",
        )
    if status == WorkspaceStatus.ERROR:
        raise Conflict(
            "workspace_failed",
            f"Workspace {workspace_id} failed ({error_message or 'see its boot log'}). "
            f"Restart it with POST /api/workspaces/{workspace_id}/restart or delete it.",
        )
    raise Conflict(
        "workspace_not_ready",
        f"Workspace {workspace_id} is {status}; follow GET /api/workspaces/{workspace_id}/"
        "boot-log and retry once it is running.",
    )


def _not_found(workspace_id: str) -> NotFound:
    # Another user's workspace answers exactly like one that does not exist.
    return NotFound("workspace_not_found", f"You have no workspace {workspace_id!r}.")


def _unreachable(workspace_id: str, why: str) -> UpstreamFailed:
    return UpstreamFailed(
        "node_unreachable",
        f"Workspace {workspace_id}'s node could not be reached ({why}). Its agent may be "
        "restarting: retry in a few seconds, or check the node with GET /api/nodes.",
    )


# --- forwarding ----------------------------------------------------------------------------


def _forwarded_headers(request: Request, scheme: str) -> dict[str, str]:
    # No Host here: the runtime's fetch sets it from the agent's URL (`vm-{node}.{domain}:
    # port` or `127.0.0.1:port`), never the client's `ws-{id}` host.
    headers = {name: value for name in FORWARDED_HEADERS if (value := request.headers.get(name))}
    headers["x-forwarded-proto"] = scheme
    headers["x-forwarded-host"] = request.headers.get("host") or urlsplit(request.url).netloc
    client_ip = request.headers.get(CLIENT_IP_HEADER)
    if client_ip:
        headers["x-forwarded-for"] = client_ip
    return headers


def _target(agent_url: str, path: str, query: list[tuple[str, str]]) -> str:
    return f"{agent_url}{path}" + (f"?{urlencode(query)}" if query else "")


async def _websocket(
    target: str, headers: dict[str, str], request: Request, workspace_id: str
) -> Response:
    headers["upgrade"] = "websocket"
    protocols = request.headers.get("sec-websocket-protocol")
    if protocols:
        headers["sec-websocket-protocol"] = protocols
    upstream = await _fetch(target, headers, "GET", workspace_id)
    socket = response_web_socket(upstream)
    if upstream.status != 101 or socket is None:
        raise _refused(upstream.status, workspace_id)
    chosen = upstream.headers.get("sec-websocket-protocol")
    answer = {"sec-websocket-protocol": chosen} if chosen else None
    event(log, "proxy.websocket", workspace=workspace_id, path=urlsplit(target).path)
    return Response(None, 101, headers=answer, web_socket=socket)


async def _http(
    target: str, headers: dict[str, str], method: str, body: bytes | None, workspace_id: str
) -> Response:
    upstream = await _fetch(target, headers, method, workspace_id, body)
    # The agent's answers are the owner's data: never cached by anything in between.
    return with_headers(upstream, {"cache-control": "no-store"})


async def _fetch(
    target: str, headers: dict[str, str], method: str, workspace_id: str, body: bytes | None = None
) -> Response:
    try:
        return await fetch(target, method=method, headers=headers, body=body)
    except Exception as exc:  # the runtime's network errors differ by platform: all mean 502
        raise _unreachable(workspace_id, type(exc).__name__) from exc


def _refused(status: int, workspace_id: str) -> SamError:
    """The agent refused a WebSocket the proxy had already authorized."""
    if status in (401, 403, 503):
        return UpstreamFailed(
            "agent_refused",
            f"Workspace {workspace_id}'s agent refused the connection ({status}): it may not "
            "have this control plane's signing keys yet. Retry in a few seconds.",
        )
    if status == 404:
        return Conflict(
            "workspace_not_ready",
            f"Workspace {workspace_id}'s agent does not know it (yet); retry once it is running.",
        )
    return _unreachable(workspace_id, f"its agent answered {status}")


def request_cookie(request: Request, name: str) -> str | None:
    raw = request.headers.get("cookie")
    if not raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None
