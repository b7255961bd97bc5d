"""The agent's HTTP and WebSocket server (aiohttp), and the wiring of its parts.

Two middlewares stand in front of every handler: the error boundary (typed AgentErrors and
aiohttp's own HTTP errors become `{"error", "message"}`; anything else is logged with its
traceback and answered 500) and auth (every route but /health needs a token; see
agent/auth.py). The routes and their handlers are in agent/routes.py.
"""

import asyncio
import contextlib
import logging
import ssl
import weakref
from collections.abc import AsyncIterator

from aiohttp import WSCloseCode, web
from aiohttp.abc import AbstractAccessLogger

from agent.activity import reporter
from agent.auth import AGENT_AUDIENCE, TERMINAL_AUDIENCE, KeySet, TokenVerifier, bearer_token
from agent.channel import Channels
from agent.channel.git_credentials import GitTokens, git_credentials
from agent.channel.model_proxy import model_proxy, new_model_client
from agent.channel.model_sessions import ModelSessions
from agent.config import AgentConfig
from agent.control_plane import ControlPlane, new_session
from agent.database import PRIVATE_DIR_MODE
from agent.errors import AgentError, Unauthorized
from agent.grants import RevokedGrants
from agent.heartbeat import Heartbeat
from agent.persistence import Store
from agent.reaper import Reaper
from agent.routes import (
    AGENT_SESSIONS,
    CONFIG,
    GRANTS,
    PRINCIPAL,
    PUBLIC_ROUTES,
    SOCKETS,
    TERMINALS,
    WEBSOCKET,
    WEBSOCKET_ROUTES,
    WORKSPACES,
    Handler,
    add_routes,
)
from agent.sessions.manager import AgentSessionManager
from agent.terminals.manager import TerminalManager
from agent.workspaces.manager import WorkspaceManager
from wire.agent_session import MAX_BODY_BYTES
from wire.version import VERSION

log = logging.getLogger("agent.server")

MAX_CONTROL_BODY_BYTES = MAX_BODY_BYTES  # admits the largest valid prompt (wire/)
SHUTDOWN_TIMEOUT_SECONDS = 10.0
STORE_FILENAME = "agent.sqlite3"

# Codes for the errors aiohttp raises itself; the agent's own come from agent/errors.py.
HTTP_ERROR_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
}

VERIFIER = web.AppKey("verifier", TokenVerifier)
HEARTBEAT = web.AppKey("heartbeat", Heartbeat)


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
    request.app[GRANTS].check(request[PRINCIPAL].claims.get("grant"))
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


# --- the app ----------------------------------------------------------------------------


def build_app(config: AgentConfig) -> web.Application:
    app = web.Application(
        middlewares=[error_middleware, auth_middleware], client_max_size=MAX_CONTROL_BODY_BYTES
    )
    app[CONFIG] = config
    app[SOCKETS] = weakref.WeakSet()
    app[GRANTS] = RevokedGrants()
    add_routes(app.router)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_on_shutdown)
    return app


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Start the parts in order before serving; stop them in reverse after (also when a
    later part fails to start)."""
    config = app[CONFIG]
    config.state_dir.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    config.state_dir.chmod(PRIVATE_DIR_MODE)  # tokens and the database: the agent's alone
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
        # SAM's own services to workspaces, each mounted by prefix on every channel.
        model_client = await parts.enter_async_context(new_model_client())
        model_sessions = ModelSessions()
        proxy = model_proxy(model_sessions, store, model_client, config.model_base_url)
        git_tokens = GitTokens(control_plane)
        git = git_credentials(git_tokens, store.repository_of)
        channels = Channels({"/model": proxy, "/git": git}, config.state_dir)
        parts.push_async_callback(channels.shutdown)
        workspaces = WorkspaceManager(config, store, control_plane, channels, git_tokens)
        parts.push_async_callback(workspaces.close)
        app[WORKSPACES] = workspaces
        app[TERMINALS] = TerminalManager(config, store, workspaces.shell_command)
        parts.push_async_callback(app[TERMINALS].close)
        app[AGENT_SESSIONS] = AgentSessionManager(
            config, store, workspaces, control_plane, model_sessions, app[TERMINALS]
        )
        parts.push_async_callback(app[AGENT_SESSIONS].close)
        await workspaces.start()
        await app[AGENT_SESSIONS].resume_all()  # after the workspaces are reconciled
        activity = reporter(
            app[TERMINALS].activity, workspaces.running_ids, app[TERMINALS], app[AGENT_SESSIONS]
        )
        heartbeat = Heartbeat(
            control_plane,
            workspaces.active_count,
            config.heartbeat_seconds,
            config.state_dir,
            activity=activity,
        )
        app[HEARTBEAT] = heartbeat
        heartbeat.start()
        parts.push_async_callback(heartbeat.stop)
        reaper = Reaper()  # the orphans that come to the agent as a subreaper
        reaper.start()
        parts.push_async_callback(reaper.stop)
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
    if AGENT_SESSIONS in app:
        await app[AGENT_SESSIONS].close()
    for ws in list(app[SOCKETS]):
        await ws.close(code=WSCloseCode.GOING_AWAY, message=b"agent shutting down")


def tls_context(config: AgentConfig) -> ssl.SSLContext | None:
    """TLS 1.2+ with the node's certificate; None serves plain HTTP (only tests do). A
    client speaking plain HTTP to the TLS port fails the handshake: nothing is answered."""
    if config.tls_cert is None or config.tls_key is None:
        return None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
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
