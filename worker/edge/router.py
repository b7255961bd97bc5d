"""The worker's request path: pick a surface by Host, run it, stamp the request id.

request ─▶ hosts.resolve ─┬─ …/api/projects/{id}/ws  ─▶ its ProjectData (the chat viewer
                          │                             socket: worker/edge/project_viewer.py)
                          ├─ api.{domain}            ─▶ API (FastAPI via asgi)
                          ├─ app.{domain}/api/*      ─▶ API
                          ├─ app.{domain}/*          ─▶ ASSETS (the SPA: CSP, /assets/* immutable)
                          ├─ ws-{id}.{domain}        ─▶ workspace proxy
                          └─ anything else           ─▶ 404

A domain error raised by a surface outside the API becomes its JSON answer here, and
anything else a logged 500 (worker/http_errors.py); the API answers its own. Before any
surface runs, a method the runtime cannot name is a 405, and an app path no file could have
a 400.
"""

import logging
import re
import time
from typing import Any
from urllib.parse import unquote, urlsplit

from worker.api.app import serving
from worker.deployment import Deployment
from worker.edge import project_viewer, proxy
from worker.edge.asset_cache import asset_cache_headers
from worker.edge.health import HEALTH_PATHS, health
from worker.edge.hosts import Surface, resolve
from worker.edge.security_headers import app_headers
from worker.errors import InvalidInput, MethodNotAllowed, NotFound, SamError
from worker.http_errors import crash_reply, error_reply
from worker.logs import event, new_request_id, request_id
from worker.platform import Request, Response, asgi, with_headers

log = logging.getLogger("sam.edge")


# Path segments that are secrets themselves (a one-time bootstrap token).
_SECRET_PATH = re.compile(r"(/api/bootstrap/)[^/?#]+")


def loggable_url(url: str) -> str:
    """`url` without its query (WebSockets carry tokens there) or secret path segments."""
    return _SECRET_PATH.sub(r"\1<redacted>", url.split("?", 1)[0])


# What a 405 for a method outside HTTP's registry announces.
ANSWERED_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
MAX_LOGGED_METHOD_CHARS = 32
# The longest file name most file systems allow; no asset or SPA route comes near it.
MAX_PATH_SEGMENT_BYTES = 255


def known_method(request: Request) -> str:
    """The request's method; one the runtime's `Request.method` cannot name (PROPFIND, any
    WebDAV verb) raises there, so it is refused here before any surface reads it."""
    try:
        return request.method.value
    except KeyError as exc:
        name = str(exc.args[0])[:MAX_LOGGED_METHOD_CHARS]
        raise MethodNotAllowed(
            "method_not_allowed",
            f"{name} is not a method SAM answers; use one of {', '.join(ANSWERED_METHODS)}.",
            allowed=ANSWERED_METHODS,
        ) from None


def check_asset_path(path: str) -> None:
    """Refuse an app path no file could have: a NUL byte, or a segment longer than a file
    name may be (the SPA's routes are short)."""
    segments = unquote(path).split("/")
    if any("\0" in segment for segment in segments):
        raise InvalidInput("invalid_path", "The path holds a NUL byte (%00): no page has one.")
    if any(len(segment.encode()) > MAX_PATH_SEGMENT_BYTES for segment in segments):
        raise InvalidInput(
            "invalid_path",
            f"A path segment is over {MAX_PATH_SEGMENT_BYTES} bytes: no page has one that long.",
        )


async def handle(request: Request, env: Any, ctx: Any) -> Response:
    rid = new_request_id(request.headers.get("x-request-id"))
    token = request_id.set(rid)
    started = time.perf_counter()
    method = "unknown"
    try:
        try:
            method = known_method(request)
            response = await _dispatch(request, env, ctx)
        except SamError as exc:
            status, body, headers = error_reply(exc)
            response = Response.from_json(body, status, headers=headers or None)
        except Exception:
            status, body = crash_reply(loggable_url(request.url))
            response = Response.from_json(body, status)
        if response.status != 101:
            response = with_headers(response, {"x-request-id": rid})
        event(
            log,
            "request.done",
            method=method,
            url=loggable_url(request.url),
            status=response.status,
            ms=round((time.perf_counter() - started) * 1000, 2),
        )
        return response
    finally:
        request_id.reset(token)


async def _dispatch(request: Request, env: Any, ctx: Any) -> Response:
    deployment = Deployment.of(env)  # the one parse of this request's settings
    config = deployment.config
    url = urlsplit(request.url)
    host = request.headers.get("host") or url.netloc
    destination = resolve(host, config.domain)
    match destination.surface:
        case Surface.API | Surface.APP if url.path in HEALTH_PATHS:
            return health(request)
        case Surface.API:
            return await _api(request, deployment, ctx)
        case Surface.APP if url.path == "/api" or url.path.startswith("/api/"):
            return await _api(request, deployment, ctx)
        case Surface.APP:
            check_asset_path(url.path)
            page = await env.ASSETS.fetch(request)
            cache = asset_cache_headers(
                url.path, page.status, page.headers.get("content-type") or ""
            )
            return with_headers(page, {**app_headers(url.scheme, config.domain), **cache})
        case Surface.WORKSPACE:
            return await proxy.handle(request, deployment, destination.workspace_id or "")
        case _:
            raise NotFound(
                "unknown_host",
                f"{host!r} is not a SAM host. Use app.{config.domain} for the web "
                f"app or api.{config.domain} for the API.",
            )


async def _api(request: Request, deployment: Deployment, ctx: Any) -> Response:
    project_id = project_viewer.project_of(urlsplit(request.url).path)
    if project_id is not None:  # a Durable Object's socket: not the API's to answer
        return await project_viewer.handle(request, deployment, project_id)
    app = serving(deployment)
    if request.headers.get("upgrade", "").lower() == "websocket":
        return await asgi.websocket(app, request, deployment.env)
    return await asgi.fetch(app, request, deployment.env, ctx)
