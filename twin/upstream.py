"""The network behind outbound `fetch`: one aiohttp session per event loop.

Created on first use, never at import time (Workers snapshot the module top level), and
closed by the edge server on shutdown. `localhost` and `*.localhost` resolve to 127.0.0.1
(twin/loopback.py): the worker reaches a local node's agent, or a test's
`vm-{id}.localhost`, by name with the Host header intact, and over https verifies its
certificate against the CAs twin/tls_trust.py was given for those names.
"""

import asyncio
import weakref
from collections.abc import Iterable
from typing import Any

import aiohttp

from twin.bridge import Closed, Frame, bridge
from twin.loopback import LoopbackResolver
from twin.tls_trust import verification_for
from twin.websockets import WebSocket, WebSocketPair

_sessions: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aiohttp.ClientSession]" = (
    weakref.WeakKeyDictionary()
)
_bridges: set[asyncio.Task[None]] = set()
# Our ends of upstream sockets that nobody has accepted yet (see `take_splice`).
_spliceable: "weakref.WeakKeyDictionary[Any, _AiohttpSocket]" = weakref.WeakKeyDictionary()

# Headers aiohttp's WebSocket handshake writes itself.
_HANDSHAKE_HEADERS = frozenset(
    {
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)


def session() -> aiohttp.ClientSession:
    loop = asyncio.get_running_loop()
    current = _sessions.get(loop)
    if current is None or current.closed:
        current = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(resolver=LoopbackResolver()),
            auto_decompress=True,
            cookie_jar=aiohttp.DummyCookieJar(),
        )
        _sessions[loop] = current
    return current


async def close() -> None:
    """Close this loop's session and any upstream sockets still open."""
    for task in list(_bridges):
        task.cancel()
    current = _sessions.pop(asyncio.get_running_loop(), None)
    if current is not None:
        await current.close()


class _AiohttpSocket:
    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket

    async def receive(self) -> Frame:
        message = await self._socket.receive()
        if message.type == aiohttp.WSMsgType.TEXT:
            return message.data
        if message.type == aiohttp.WSMsgType.BINARY:
            return message.data
        reason = message.extra if isinstance(message.extra, str) else ""
        if message.type == aiohttp.WSMsgType.CLOSE:
            # The code the peer sent: over TLS, aiohttp's own reply may fail against a peer
            # that already shut the transport, which leaves `close_code` at 1006.
            return Closed(int(message.data), reason)
        return Closed(self._socket.close_code or 1006, reason)

    async def send(self, data: str | bytes) -> None:
        if isinstance(data, str):
            await self._socket.send_str(data)
        else:
            await self._socket.send_bytes(data)

    async def close(self, code: int, reason: str) -> None:
        await self._socket.close(code=code, message=reason.encode())


def take_splice(end: Any) -> "_AiohttpSocket | None":
    """The upstream socket behind `end` if worker code passed it on untouched.

    When the edge is handed our unaccepted end of an upstream WebSocket (a proxy returning
    `fetch`'s socket as its own 101), it can join the browser straight to the upstream
    instead of relaying every frame through the pair twice; nothing observable changes,
    since no code ever held an accepted end.
    """
    return _spliceable.pop(end, None)


class HandshakeRefused(Exception):
    """The upstream answered a WebSocket handshake with `status` instead of 101."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status} {message}")
        self.status = status
        self.message = message


async def connect_websocket(url: str, headers: Iterable[tuple[str, str]]) -> WebSocket:
    """Open `url` as a WebSocket; our end of a pair, bridged to it once accepted.

    Raises `HandshakeRefused` when the upstream does not switch protocols.
    """
    url = url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    headers = list(headers)
    offered = next((v for k, v in headers if k.lower() == "sec-websocket-protocol"), "")
    protocols = [p.strip() for p in offered.split(",") if p.strip()]
    headers = [(k, v) for k, v in headers if k.lower() not in _HANDSHAKE_HEADERS]
    try:
        # No permessage-deflate: the local edge's upstreams are agents on this machine,
        # where compressing every terminal frame costs CPU and saves nothing.
        socket = await session().ws_connect(
            url,
            headers=headers,
            protocols=protocols,
            autoping=True,
            compress=0,
            ssl=verification_for(url),
        )
    except aiohttp.WSServerHandshakeError as exc:
        raise HandshakeRefused(exc.status, exc.message) from exc
    ours, theirs = WebSocketPair.new().object_values()
    upstream = _AiohttpSocket(socket)
    _spliceable[ours] = upstream

    def start_bridge() -> None:
        # Nothing flows until worker code (or the edge) accepts our end, as in workerd.
        _spliceable.pop(ours, None)
        task = asyncio.create_task(bridge(theirs, upstream))
        _bridges.add(task)
        task.add_done_callback(_bridges.discard)

    ours.when_accepted(start_bridge)
    return ours
