"""The agent's HTTP and WebSocket API (aiohttp), and the wiring of its parts.

Two middlewares stand in front of every handler: the error boundary (typed AgentErrors and
aiohttp's own HTTP errors become `{"error", "message"}`; anything else is logged with its
traceback and answered 500) and auth (every route but /health needs a token; see
agent/auth.py). The routes are written down in docs/protocols/agent-api.md.
"""

import asyncio
import contextlib
import json
import logging
import ssl
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, web
from aiohttp.abc import AbstractAccessLogger

from agent.auth import AGENT_AUDIENCE, TERMINAL_AUDIENCE, KeySet, TokenVerifier, bearer_token
from agent.config import AgentConfig
from agent.control_plane import ControlPlane, new_session
from agent.errors import AgentError, BadRequest, Unauthorized
from agent.heartbeat import Heartbeat
from agent.persistence import Store
from agent.terminals import TerminalManager
from agent.workspaces import WorkspaceManager
from worker.version import VERSION

log = logging.getLogger("agent.server")

MAX_CONTROL_BODY_BYTES = 64 * 1024
WS_HEARTBEAT_SECONDS = 30.0
# The terminal protocol answers frames over max_frame_bytes with an error frame; aiohttp
# closes the socket (1009) only beyond this many times that, so a bad frame is not a drop.
WS_FRAME_CEILING_FACTOR = 4
BOOT_LOG_WS_MAX_MESSAGE_BYTES = 4 * 1024
SHUTDOWN_TIMEOUT_SECONDS = 10.0
STORE_FILENAME = "agent.sqlite3"
CREATE_FIELDS = {"id", "repository", "branch"}

# Codes for the errors aiohttp raises itself; the agent's own come from agent/errors.py.
HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}

PUBLIC_ROUTES = frozenset({"health"})
WEBSOCKET_ROUTES = frozenset({"boot_log_ws", "terminal_ws"})

CONFIG = web.AppKey("config", AgentConfig)
VERIFIER = web.AppKey("verifier", TokenVerifier)
WORKSPACES = web.AppKey("workspaces", WorkspaceManager)
TERMINALS = web.AppKey("terminals", TerminalManager)
HEARTBEAT = web.AppKey("heartbeat", Heartbeat)
SOCKETS = web.AppKey("sockets", weakref.WeakSet)
PRINCIPAL = "sam.principal"
WEBSOCKET = "sam.websocket"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error_response(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def _http_error_message(request: web.Request, exc: web.HTTPException) -> str:
    if isinstance(exc, web.HTTPNotFound) and request.match_info.route.name is None:
        return f"no route {request.method} {request.path}: see docs/protocols/agent-api.md"
    if isinstance(exc, web.HTTPMethodNotAllowed):
        allowed = ", ".join(sorted(exc.allowed_methods))
        return f"{request.method} is not allowed on {request.path}; allowed: {allowed}"
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return f"the body is over {MAX_CONTROL_BODY_BYTES} bytes: send less"
    return exc.text or exc.reason


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The one place errors become JSON."""
    try:
        return await handler(request)
    except AgentError as exc:
        if await _closed_socket(request, exc.message):
            return request[WEBSOCKET]
        return error_response(exc.status, exc.code, exc.message)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = HTTP_ERROR_CODES.get(exc.status) or exc.reason.lower().replace(" ", "_")
        return error_response(exc.status, code, _http_error_message(request, exc))
    except Exception:
        log.exception("request.crashed method=%s path=%s", request.method, request.path)
        if await _closed_socket(request, "internal error"):
            return request[WEBSOCKET]
        return error_response(
            500, "internal_error", "the agent failed on this request; its log has the details"
        )


async def _closed_socket(request: web.Request, reason: str) -> bool:
    """After the upgrade no HTTP answer is possible: close the socket instead."""
    ws: web.WebSocketResponse | None = request.get(WEBSOCKET)
    if ws is None or not ws.prepared:
        return False
    await ws.close(code=WSCloseCode.INTERNAL_ERROR, message=reason[:100].encode())
    return True


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    route = request.match_info.route.name
    if request.match_info.http_exception is not None or route in PUBLIC_ROUTES:
        return await handler(request)
    websocket = route in WEBSOCKET_ROUTES
    token = bearer_token(request.headers.get("Authorization"))
    if token is None and websocket:
        token = request.query.get("token") or None
    if token is None:
        where = (
            "Authorization: Bearer <token> or ?token=<token>"
            if websocket
            else ("Authorization: Bearer <token>")
        )
        raise Unauthorized(f"a token from the control plane is required: send {where}")
    audiences = (AGENT_AUDIENCE, TERMINAL_AUDIENCE) if websocket else (AGENT_AUDIENCE,)
    request[PRINCIPAL] = await request.app[VERIFIER].verify(
        token, audiences, workspace=request.match_info.get("id")
    )
    return await handler(request)


class AccessLogger(AbstractAccessLogger):
    """Key-value access lines without the query string: it may carry a token."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            "http.request method=%s path=%s status=%s seconds=%.4f",
            request.method,
            request.path,
            response.status,
            time,
        )


# --- handlers ---------------------------------------------------------------------------


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()  # over client_max_size raises HTTPRequestEntityTooLarge
    try:
        body = json.loads(raw) if raw else None
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def create_spec(body: dict[str, Any]) -> dict[str, Any]:
    """The body's shape; the WorkspaceManager validates the values (id, repository, branch)."""
    unknown = set(body) - CREATE_FIELDS
    if unknown:
        raise BadRequest(f"unknown fields {sorted(unknown)}; accepted: {sorted(CREATE_FIELDS)}")
    return {name: body.get(name) for name in CREATE_FIELDS}


async def health(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return web.json_response({"status": "ok", "node_id": config.node_id, "agent_version": VERSION})


async def create_workspace(request: web.Request) -> web.Response:
    spec = create_spec(await json_body(request))
    workspace = await request.app[WORKSPACES].create(spec)
    log.info("workspace.created id=%s repository=%s", spec["id"], spec["repository"])
    return web.json_response(workspace, status=202)


async def list_workspaces(request: web.Request) -> web.Response:
    return web.json_response({"workspaces": request.app[WORKSPACES].list()})


async def get_workspace(request: web.Request) -> web.Response:
    return web.json_response(request.app[WORKSPACES].get(request.match_info["id"]))


def _lifecycle_action(action: str, status: int) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        workspace_id = request.match_info["id"]
        workspaces = request.app[WORKSPACES]
        workspaces.get(workspace_id)  # 404 before anything changes
        result = await getattr(workspaces, action)(workspace_id)
        # Shells in a stopped, rebuilt or deleted workspace are gone or must go.
        await request.app[TERMINALS].close_workspace(workspace_id)
        log.info("workspace.%s id=%s", action, workspace_id)
        if action == "delete":
            return web.json_response({"id": workspace_id, "deleted": True}, status=status)
        body = result if isinstance(result, dict) else workspaces.get(workspace_id)
        return web.json_response(body, status=status)

    return handler


async def boot_log(request: web.Request) -> web.Response:
    log_ = request.app[WORKSPACES].boot_log(request.match_info["id"])
    return web.json_response({"entries": log_.entries()})


async def boot_log_ws(request: web.Request) -> web.WebSocketResponse:
    entries = request.app[WORKSPACES].boot_log(request.match_info["id"]).subscribe()
    ws = await _prepare(request, BOOT_LOG_WS_MAX_MESSAGE_BYTES)

    async def send_entries() -> None:
        async for entry in entries:
            await ws.send_json(entry)

    sender = asyncio.create_task(send_entries())
    # Reading is what notices the viewer leaving; viewers send nothing we act on.
    reader = asyncio.create_task(_drain(ws))
    done, _ = await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
    for task in (sender, reader):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
            await task
    if sender in done and sender.exception() is None:
        await ws.close(code=WSCloseCode.OK, message=b"provisioning ended")
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    async for _message in ws:
        pass


async def terminals(request: web.Request) -> web.Response:
    workspace_id = request.match_info["id"]
    request.app[WORKSPACES].get(workspace_id)
    return web.json_response({"tabs": request.app[TERMINALS].tabs(workspace_id)})


async def terminal_ws(request: web.Request) -> web.WebSocketResponse:
    workspace_id = request.match_info["id"]
    request.app[WORKSPACES].get(workspace_id)
    ceiling = request.app[CONFIG].max_frame_bytes * WS_FRAME_CEILING_FACTOR
    ws = await _prepare(request, ceiling)
    await request.app[TERMINALS].handle(ws, workspace_id)
    return ws


async def _prepare(request: web.Request, max_message_bytes: int) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT_SECONDS, max_msg_size=max_message_bytes)
    request[WEBSOCKET] = ws
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    return ws


# --- the app ----------------------------------------------------------------------------


def build_app(config: AgentConfig) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=MAX_CONTROL_BODY_BYTES
    )
    app[CONFIG] = config
    app[SOCKETS] = weakref.WeakSet()
    app.router.add_get("/health", health, name="health")
    app.router.add_post("/workspaces", create_workspace, name="create_workspace")
    app.router.add_get("/workspaces", list_workspaces, name="list_workspaces")
    app.router.add_get("/workspaces/{id}", get_workspace, name="get_workspace")
    app.router.add_delete("/workspaces/{id}", _lifecycle_action("delete", 200), name="delete")
    for action, status in (("stop", 200), ("restart", 202), ("rebuild", 202)):
        app.router.add_post(
            f"/workspaces/{{id}}/{action}", _lifecycle_action(action, status), name=action
        )
    app.router.add_get("/workspaces/{id}/boot-log", boot_log, name="boot_log")
    app.router.add_get("/workspaces/{id}/boot-log/ws", boot_log_ws, name="boot_log_ws")
    app.router.add_get("/workspaces/{id}/terminals", terminals, name="terminals")
    app.router.add_get("/workspaces/{id}/terminal/ws", terminal_ws, name="terminal_ws")
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_on_shutdown)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Start the parts in order before serving; stop them in reverse after (also when a
    later part fails to start)."""
    config = app[CONFIG]
    config.state_dir.mkdir(parents=True, exist_ok=True)
    async with contextlib.AsyncExitStack() as parts:
        session = await parts.enter_async_context(new_session())
        keys = KeySet(config.jwks_url, session)
        app[VERIFIER] = TokenVerifier(keys, config.jwt_issuer, config.node_id)
        prefetch = asyncio.create_task(keys.refresh())
        parts.callback(prefetch.cancel)
        control_plane = ControlPlane(config, session)
        parts.push_async_callback(control_plane.close)
        store = Store(config.state_dir / STORE_FILENAME)
        parts.callback(store.close)
        workspaces = WorkspaceManager(config, store, control_plane)
        parts.push_async_callback(workspaces.close)
        app[WORKSPACES] = workspaces
        app[TERMINALS] = TerminalManager(config, store, workspaces.shell_command)
        parts.push_async_callback(app[TERMINALS].close)
        await workspaces.start()
        heartbeat = Heartbeat(
            control_plane, workspaces.active_count, config.heartbeat_seconds, config.state_dir
        )
        app[HEARTBEAT] = heartbeat
        heartbeat.start()
        parts.push_async_callback(heartbeat.stop)
        log.info(
            "agent.started node_id=%s backend=%s version=%s workspaces=%d",
            config.node_id,
            config.backend,
            VERSION,
            len(workspaces.list()),
        )
        yield
    log.info("agent.stopped node_id=%s", config.node_id)


async def _on_shutdown(app: web.Application) -> None:
    """Before the server waits for its handlers: open sockets would hold it until timeout."""
    if HEARTBEAT in app:
        await app[HEARTBEAT].stop()
    if TERMINALS in app:
        await app[TERMINALS].close()
    for ws in list(app[SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"agent shutting down")


def tls_context(config: AgentConfig) -> ssl.SSLContext | None:
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(config.tls_cert, config.tls_key)
    return context


def run(config: AgentConfig) -> None:
    """Serve until SIGTERM or SIGINT, then shut down gracefully."""
    web.run_app(
        build_app(config),
        host=config.host,
        port=config.port,
        ssl_context=tls_context(config),
        access_log_class=AccessLogger,
        shutdown_timeout=SHUTDOWN_TIMEOUT_SECONDS,
        print=None,
    )
