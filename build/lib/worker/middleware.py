"""Plain ASGI wrappers around the API: the outer error boundary and the body limit.

Written as raw ASGI rather than Starlette's BaseHTTPMiddleware, which costs a task and
a stream per request on the hottest path.
"""

import json
import logging
from typing import Any

from worker.config import Config
from worker.errors import error_body
from worker.logs import request_id

log = logging.getLogger("sam.api")

CRASH_BODY = error_body(
    "internal_error",
    "Something went wrong on our side and it has been logged. Try again, and quote the "
    "x-request-id response header if it keeps happening.",
)

Scope = dict[str, Any]
Message = dict[str, Any]


async def send_json(send: Any, status: int, body: Any) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class ApiBoundary:
    """Adds the request id to every response; turns a crash into a JSON 500, logged once."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        rid = request_id.get().encode()

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = [*message.get("headers", []), (b"x-request-id", rid)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("request.crashed path=%s", scope.get("path"))
            if not started:
                await send_json(send_with_id, 500, CRASH_BODY)


class BodyLimit:
    """Refuses request bodies over the deployment's limit with a JSON 413."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = Config.from_env(scope["env"]).max_body_bytes
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
    await send_json(
        send,
        413,
        error_body(
            "payload_too_large", f"The request body is larger than the limit of {limit} bytes."
        ),
    )
