"""The local edge: one process that drives the worker exactly as workerd would.

uvicorn speaks HTTP; each request becomes a `Request` handed to a fresh instance of the
entry module's `Default` class (`fetch`), a `101` answer with a WebSocket is bridged to
the browser's socket, the crons in wrangler.toml call `Default.scheduled`, and Durable
Object alarms fire from the same process. Everything persists under the data directory.
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qs

from twin import env as local_env
from twin import tls_trust, upstream
from twin.bridge import Closed, Frame, bridge, relay
from twin.clock import Clock, SystemClock
from twin.cron import CronScheduler, ScheduledController, validate
from twin.entrypoints import ExecutionContext
from twin.http import Request, Response
from twin.private_files import private_dir
from twin.wrangler import WranglerConfig

log = logging.getLogger("sam.local.edge")

# Cloudflare refuses request bodies over 100 MB (Free and Pro plans) before the worker runs.
MAX_REQUEST_BODY_BYTES = 100 * 1024 * 1024
# How long shutdown waits for `waitUntil` work before abandoning it.
WAIT_UNTIL_GRACE_SECONDS = 5.0
SCHEDULED_HOOK = "/__scheduled"
CLIENT_IP_HEADER = b"cf-connecting-ip"

Scope = dict[str, Any]


class LocalService(Protocol):
    """A service binding the host program adds to `env` (wrangler's `[[services]]`): an
    object with `fetch(request)` that lives as long as the edge."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


# Makes a service from the built `env` and the edge's data directory.
ServiceFactory = Callable[[Any, Path], LocalService]


class LocalEdge:
    """An ASGI application (for uvicorn) that is also the local Workers runtime."""

    def __init__(
        self,
        config: WranglerConfig,
        data_dir: Path,
        overrides: dict[str, str] | None = None,
        clock: Clock | None = None,
        services: Mapping[str, ServiceFactory] | None = None,
        loopback_cas: tuple[Path, ...] = (),
    ) -> None:
        """`loopback_cas`: the certificate authorities that vouch for `*.localhost`
        upstreams over https (twin/tls_trust.py); none means no such certificate is trusted."""
        self.config = config
        self.data_dir = data_dir
        self.clock = clock or SystemClock()
        self._overrides = overrides or {}
        self._pending: set[asyncio.Task[Any]] = set()
        self.runtime: local_env.Runtime | None = None
        self._cron: CronScheduler | None = None
        self._service_factories = dict(services or {})
        self.services: dict[str, LocalService] = {}
        self._loopback_cas = loopback_cas

    async def start(self) -> None:
        private_dir(self.data_dir)
        tls_trust.trust_loopback_cas(self._loopback_cas)
        self.runtime = local_env.build(self.config, self.data_dir, self.clock, self._overrides)
        self._entrypoint = self.runtime.module.Default
        self._cron = CronScheduler(self.config.crons, self.scheduled, self.clock)
        self._cron.start()
        self.runtime.alarms.start()
        for name, make in self._service_factories.items():
            service = make(self.runtime.env, self.data_dir)
            setattr(self.runtime.env, name, service)
            self.services[name] = service
            await service.start()

    async def stop(self) -> None:
        assert self.runtime is not None and self._cron is not None
        await self._cron.stop()
        await self.runtime.alarms.stop()
        if self._pending:
            await asyncio.wait(set(self._pending), timeout=WAIT_UNTIL_GRACE_SECONDS)
        for service in self.services.values():
            await service.stop()
        await upstream.close()
        self.runtime.close()

    def _instance(self) -> Any:
        assert self.runtime is not None, "LocalEdge.start() has not run"
        return self._entrypoint(ExecutionContext(self._pending), self.runtime.env)

    async def fetch(self, request: Request) -> Response:
        return await self._instance().fetch(request)

    async def scheduled(self, controller: ScheduledController) -> None:
        instance = self._instance()
        await instance.scheduled(controller, local_env.raw_bindings(instance.env), instance.ctx)

    # ---- ASGI ------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            try:
                if message["type"] == "lifespan.startup":
                    await self.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await self.stop()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
            except Exception as exc:
                log.exception("edge.lifespan_failed")
                await send({"type": message["type"] + ".failed", "message": str(exc)})
                return

    async def _http(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["path"] == SCHEDULED_HOOK and _is_loopback(scope):
            response = await self._scheduled_hook(scope)
        else:
            body = await _read_body(receive)
            if body is None:
                response = Response("Payload Too Large", 413)
            else:
                response = await self.fetch(_request(scope, body or None))
        await _send_response(response, send, head=scope["method"] == "HEAD")

    async def _scheduled_hook(self, scope: Scope) -> Response:
        query = parse_qs(scope["query_string"].decode())
        expression = query.get(
            "cron", [self.config.crons[0] if self.config.crons else "* * * * *"]
        )[0]
        try:
            validate(expression)
        except ValueError as exc:
            return Response(str(exc), 400)
        await self.scheduled(ScheduledController(expression, self.clock.now() * 1000))
        return Response("Ran scheduled event")

    async def _websocket(self, scope: Scope, receive: Any, send: Any) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        response = await self.fetch(_request(scope, None))
        if response.status != 101 or response.web_socket is None:
            await _deny(response, scope, send)
            return
        protocol = response.headers.get("sec-websocket-protocol")
        await send(
            {
                "type": "websocket.accept",
                "subprotocol": protocol,
                "headers": [(b"x-request-id", response.headers.get("x-request-id", "").encode())]
                if "x-request-id" in response.headers
                else [],
            }
        )
        browser = _AsgiSocket(receive, send)
        upstream_socket = upstream.take_splice(response.web_socket)
        if upstream_socket is not None:
            await relay(browser, upstream_socket)
        else:
            await bridge(response.web_socket, browser)


class _AsgiSocket:
    """A browser's WebSocket as uvicorn hands it over."""

    def __init__(self, receive: Any, send: Any) -> None:
        self._receive = receive
        self._send = send

    async def receive(self) -> Frame:
        message = await self._receive()
        if message["type"] == "websocket.receive":
            return message["text"] if message.get("text") is not None else message["bytes"]
        return Closed(message.get("code", 1005), message.get("reason") or "")

    async def send(self, data: str | bytes) -> None:
        key = "text" if isinstance(data, str) else "bytes"
        await self._send({"type": "websocket.send", key: data})

    async def close(self, code: int, reason: str) -> None:
        with contextlib.suppress(Exception):  # the browser has already gone
            await self._send({"type": "websocket.close", "code": code, "reason": reason})


def _request(scope: Scope, body: bytes | None) -> Request:
    # The client's address as Cloudflare passes it: CF-Connecting-IP, set by the edge and
    # never taken from the client (worker/api/ratelimit.py counts per address).
    headers = [
        (k.decode("latin-1"), v.decode("latin-1"))
        for k, v in scope["headers"]
        if k.lower() != CLIENT_IP_HEADER
    ]
    if scope.get("client"):
        headers.append((CLIENT_IP_HEADER.decode(), scope["client"][0]))
    host = next((v for k, v in headers if k.lower() == "host"), None)
    if host is None:
        server_host, port = scope.get("server") or ("127.0.0.1", 80)
        host = f"{server_host}:{port}"
    scheme = {"ws": "http", "wss": "https"}.get(scope["scheme"], scope["scheme"])
    path = scope.get("raw_path") or scope["path"].encode()
    query = scope.get("query_string", b"")
    url = f"{scheme}://{host}{path.decode('latin-1')}" + (
        f"?{query.decode('latin-1')}" if query else ""
    )
    return Request(url, method=scope.get("method", "GET"), headers=headers, body=body)


async def _read_body(receive: Any) -> bytes | None:
    """The whole request body, or None when it is over Cloudflare's limit."""
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_REQUEST_BODY_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def _send_response(response: Response, send: Any, head: bool = False) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": response.status,
            "headers": [
                (k.lower().encode("latin-1"), v.encode("latin-1"))
                for k, v in response.headers.items()
            ],
        }
    )
    whole = b"" if head else response.buffered()
    if whole is not None:
        await send({"type": "http.response.body", "body": whole})
        return
    async for chunk in response.stream():
        await send({"type": "http.response.body", "body": chunk, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _deny(response: Response, scope: Scope, send: Any) -> None:
    """Refuse a WebSocket upgrade with the worker's own HTTP answer where uvicorn allows."""
    if "websocket.http.response" in scope.get("extensions", {}):
        await send(
            {
                "type": "websocket.http.response.start",
                "status": response.status if response.status != 101 else 500,
                "headers": [
                    (k.lower().encode("latin-1"), v.encode("latin-1"))
                    for k, v in response.headers.items()
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": await response.bytes()})
    else:
        await send({"type": "websocket.close", "code": 1008})


def _is_loopback(scope: Scope) -> bool:
    client = scope.get("client")
    return client is not None and client[0] in ("127.0.0.1", "::1")
