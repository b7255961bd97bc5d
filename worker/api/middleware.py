"""Plain ASGI layers of the API: CORS, the body limit, and the boundary for crashes.

Written as raw ASGI rather than Starlette's BaseHTTPMiddleware, which costs a task and
a stream per request on the hottest path.
"""

import json
from typing import Any

from worker.config import Config
from worker.errors import Forbidden, SamError, TooLarge
from worker.http_errors import crash_reply, error_reply

Scope = dict[str, Any]
Message = dict[str, Any]


async def send_json(
    send: Any, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(
                    (name.lower().encode(), value.encode())
                    for name, value in (headers or {}).items()
                ),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def send_error(send: Any, error: SamError) -> None:
    await send_json(send, *error_reply(error))


class ApiBoundary:
    """The API's crash boundary: anything a route raises that is not a domain error is our
    bug, answered as a JSON 500 and logged once (worker.http_errors.crash_reply)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except Exception:
            status, body = crash_reply(scope.get("path", ""))
            if not started:
                await send_json(send, status, body)


class BodyLimit:
    """Refuses request bodies over the deployment's limit with a JSON 413."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = scope["deployment"].config.max_body_bytes
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        # The runtime hands the body over whole, so reading it here costs nothing extra
        # and also catches chunked bodies that declare no length.
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await _too_large(send, limit)
                return
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _too_large(send: Any, limit: int) -> None:
    await send_error(
        send,
        TooLarge(
            "payload_too_large", f"The request body is larger than the limit of {limit} bytes."
        ),
    )


# CORS for the app's own origin. Allowed methods and headers are what the SPA and the CLI
# send; Retry-After and the request id are readable by the app, which shows both.
CORS_ALLOW_METHODS = b"GET, POST, PUT, PATCH, DELETE"
CORS_ALLOW_HEADERS = b"authorization, content-type, x-request-id"
CORS_EXPOSE_HEADERS = b"retry-after, x-request-id"
# Browsers cap this anyway (Chromium at 2 h); 10 min keeps a changed policy short-lived.
CORS_MAX_AGE_SECONDS = 600
VARY_ORIGIN = (b"vary", b"origin")


class Cors:
    """CORS for exactly one origin, the app (`https://app.{domain}`), with credentials.

    The SPA on the app host may call the API on the api host. A preflight (OPTIONS with
    Access-Control-Request-Method) is answered here, before the API; any other origin
    gets no CORS headers at all (its preflight a JSON 403), so browsers keep its pages
    out. Every API response says `Vary: Origin`, so no cache serves one origin's answer to
    another. Cookie-authenticated writes are still checked for Origin by the API itself
    (the CSRF rule in worker/auth/sessions.py): CORS only governs what a browser may read.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        origin = requested = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value
            elif name == b"access-control-request-method":
                requested = value
        headers = [VARY_ORIGIN]
        preflight = scope["method"] == "OPTIONS" and requested is not None
        if origin is not None and origin.decode("latin-1") in app_origins(
            scope["deployment"].config
        ):
            headers += [
                (b"access-control-allow-origin", origin),
                (b"access-control-allow-credentials", b"true"),
            ]
            if preflight:
                await _preflight(send, headers)
                return
            headers.append((b"access-control-expose-headers", CORS_EXPOSE_HEADERS))
        elif preflight and origin is not None:
            refusal = Forbidden(
                "origin_not_allowed",
                f"{origin.decode('latin-1')} may not call this API from a browser; only "
                "the SAM web app may.",
            )
            await send_error(_with_headers(send, headers), refusal)
            return
        await self.app(scope, receive, _with_headers(send, headers))


def app_origins(config: Config) -> frozenset[str]:
    """The origins allowed to call the API cross-origin: the app, on https (and http in
    development, where `sam dev` serves plain http)."""
    origin = f"app.{config.domain}"
    if config.is_development:
        return frozenset({f"https://{origin}", f"http://{origin}"})
    return frozenset({f"https://{origin}"})


def _with_headers(send: Any, headers: list[tuple[bytes, bytes]]) -> Any:
    async def sender(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *headers]
        await send(message)

    return sender


async def _preflight(send: Any, headers: list[tuple[bytes, bytes]]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 204,
            "headers": [
                *headers,
                (b"access-control-allow-methods", CORS_ALLOW_METHODS),
                (b"access-control-allow-headers", CORS_ALLOW_HEADERS),
                (b"access-control-max-age", str(CORS_MAX_AGE_SECONDS).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": b""})
