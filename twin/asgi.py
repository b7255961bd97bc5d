"""The twin of `workers.asgi`: run an ASGI app (FastAPI) for one `Request`.

Like the SDK, the request body is handed over whole, a response whose body comes in
several chunks is streamed, and a WebSocket request is answered `101` with the client end
of a `WebSocketPair` while the app talks to the server end. Like the SDK, both answer the
raw JS Response (`JsResponse`), not the SDK's `Response`: the caller wraps it. Unlike the
SDK, the app's lifespan is not run around each request: ours declares none.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import unquote, urlsplit

from twin.http import JsResponse, Request, Response
from twin.websockets import WebSocketPair

ASGI = {"spec_version": "2.3", "version": "3.0"}
log = logging.getLogger("sam.local.asgi")
_background: set[asyncio.Task[Any]] = set()


def request_to_scope(request: Request, env: Any, kind: str = "http") -> dict[str, Any]:
    url = urlsplit(request.url)
    return {
        "type": kind,
        "asgi": ASGI,
        "http_version": "1.1",
        "method": request._method,
        "scheme": url.scheme if kind == "http" else {"https": "wss", "http": "ws"}[url.scheme],
        "path": unquote(url.path) or "/",
        "raw_path": (url.path or "/").encode(),
        "query_string": url.query.encode(),
        "root_path": "",
        "headers": [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in request.headers.items()
        ],
        "server": (url.hostname, url.port),
        "env": env,
    }


async def fetch(app: Any, request: Request, env: Any, ctx: Any = None) -> JsResponse:
    body = await request.bytes()
    received = False
    finished = asyncio.Event()
    started: asyncio.Future[JsResponse] = asyncio.get_running_loop().create_future()
    chunks: asyncio.Queue[bytes | None] | None = None
    status, headers, buffered = 200, [], bytearray()

    async def receive() -> dict[str, Any]:
        nonlocal received
        if not received:
            received = True
            return {"type": "http.request", "body": body, "more_body": False}
        await finished.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers, chunks
        if message["type"] == "http.response.start":
            status = message["status"]
            headers = [
                (k.decode("latin-1"), v.decode("latin-1")) for k, v in message.get("headers", [])
            ]
            return
        assert message["type"] == "http.response.body", message["type"]
        data, more = message.get("body", b""), message.get("more_body", False)
        if chunks is not None:
            await chunks.put(data)
            if not more:
                await chunks.put(None)
                finished.set()
        elif more:
            chunks = asyncio.Queue()
            await chunks.put(data)
            started.set_result(JsResponse(Response(_drain(chunks), status, headers=headers)))
        else:
            buffered.extend(data)
            started.set_result(
                JsResponse(Response(bytes(buffered) or None, status, headers=headers))
            )
            finished.set()

    async def run() -> None:
        try:
            await app(request_to_scope(request, env), receive, send)
            if not started.done():
                raise RuntimeError("The application did not generate a response")
        except Exception as exc:
            if not started.done():
                started.set_exception(exc)
            else:
                log.exception("ASGI application failed after its response started")
                if chunks is not None:
                    await chunks.put(None)
        finally:
            finished.set()

    task = asyncio.create_task(run())
    response = await started
    if chunks is None:
        await task
    else:
        _keep(task)
    return response


async def websocket(app: Any, request: Request, env: Any = None) -> JsResponse:
    client, server = WebSocketPair.new().object_values()
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    inbox.put_nowait({"type": "websocket.connect"})

    def on_message(event: Any) -> None:
        key = "text" if isinstance(event.data, str) else "bytes"
        inbox.put_nowait({"type": "websocket.receive", key: event.data})

    def on_close(event: Any) -> None:
        inbox.put_nowait(
            {"type": "websocket.disconnect", "code": event.code, "reason": event.reason}
        )

    server.addEventListener("message", on_message)
    server.addEventListener("close", on_close)
    server.accept()
    closed_by_app = False

    async def send(message: dict[str, Any]) -> None:
        nonlocal closed_by_app
        kind = message["type"]
        if kind == "websocket.send":
            server.send(message["text"] if message.get("text") is not None else message["bytes"])
        elif kind == "websocket.close":
            closed_by_app = True
            server.close(message.get("code", 1000), message.get("reason") or "")

    async def run() -> None:
        failed = False
        try:
            await app(request_to_scope(request, env, "websocket"), inbox.get, send)
        except Exception:
            failed = True
            log.exception("ASGI WebSocket application failed")
        if not closed_by_app:
            with contextlib.suppress(Exception):  # the client has already gone
                server.close(1011 if failed else 1000, "")

    _keep(asyncio.create_task(run()))
    return JsResponse(Response(None, 101, web_socket=client))


async def _drain(chunks: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
    while (chunk := await chunks.get()) is not None:
        if chunk:  # apps end a stream with an empty chunk; it carries no bytes
            yield chunk


def _keep(task: asyncio.Task[Any]) -> None:
    _background.add(task)
    task.add_done_callback(_background.discard)
