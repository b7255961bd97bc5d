"""`WebSocketPair` and `WebSocket` as Python code on Workers sees them.

The two ends of a pair are joined in memory. Events are delivered from the event loop
(never from inside `send`), in order; messages reaching an end that has not been accepted
wait until it is. A close is answered automatically, as workerd does, so both ends reach
CLOSED and both see a `close` event. Not thread-safe: use from one event loop.

An end accepted with `ctx.acceptWebSocket` (hibernation) hands its events to the Durable
Object's handlers instead of to listeners; its tags and attachment live on the socket, so
they outlive the object instance.
"""

import asyncio
import inspect
import logging
from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from twin import values

log = logging.getLogger("sam.local.websockets")

CONNECTING, OPEN, CLOSING, CLOSED = 0, 1, 2, 3
MAX_ATTACHMENT_BYTES = 2048
MAX_MESSAGE_BYTES = 32 * 1024 * 1024
MAX_CLOSE_REASON_BYTES = 123
MAX_TAGS_PER_SOCKET = 10
MAX_TAG_CHARS = 256
EVENT_TYPES = frozenset({"message", "close", "error"})

_NOT_ACCEPTED = (
    "You must call one of accept() or state.acceptWebSocket() on this WebSocket before "
    "sending messages."
)


@dataclass(frozen=True)
class MessageEvent:
    data: str | bytes
    type: str = "message"


@dataclass(frozen=True)
class CloseEvent:
    code: int
    reason: str
    wasClean: bool = True
    type: str = "close"


Event = MessageEvent | CloseEvent
Dispatcher = Callable[["WebSocket", Event], None]

# Set by a Durable Object while it handles an event: told of every socket it `accept()`s,
# so the object is not evicted while such a socket is open.
accept_observer: ContextVar[Callable[["WebSocket"], None] | None] = ContextVar(
    "accept_observer", default=None
)


class WebSocket:
    CONNECTING, OPEN, CLOSING, CLOSED = CONNECTING, OPEN, CLOSING, CLOSED

    def __init__(self) -> None:
        self.readyState = CONNECTING
        self.tags: tuple[str, ...] = ()
        self._peer: WebSocket | None = None
        self._accepted = False
        self._dispatcher: Dispatcher | None = None
        self._listeners: dict[str, list[Callable[[Any], Any]]] = {t: [] for t in EVENT_TYPES}
        self._inbox: deque[Event] = deque()
        self._drain_scheduled = False
        self._attachment: bytes | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._on_accept: list[Callable[[], None]] = []

    def accept(self) -> None:
        self._start(None)
        observer = accept_observer.get()
        if observer is not None:
            observer(self)

    def accept_hibernatable(self, dispatcher: Dispatcher, tags: list[str]) -> None:
        """`ctx.acceptWebSocket`: events go to `dispatcher` instead of listeners."""
        if len(tags) > MAX_TAGS_PER_SOCKET:
            raise ValueError(f"A WebSocket cannot have more than {MAX_TAGS_PER_SOCKET} tags.")
        for tag in tags:
            if not isinstance(tag, str):
                raise TypeError("WebSocket tags must be strings.")
            if len(tag) > MAX_TAG_CHARS:
                raise ValueError(f"A WebSocket tag cannot be longer than {MAX_TAG_CHARS} chars.")
        self.tags = tuple(tags)
        self._start(dispatcher)

    def send(self, data: str | bytes) -> None:
        if not self._accepted:
            raise TypeError(_NOT_ACCEPTED)
        if self.readyState != OPEN:
            raise TypeError("Can't call WebSocket send() after close().")
        if isinstance(data, bytearray | memoryview):
            data = bytes(data)
        if not isinstance(data, str | bytes):
            raise TypeError(f"WebSocket send() takes str or bytes, not {type(data).__name__}")
        size = len(data.encode() if isinstance(data, str) else data)
        if size > MAX_MESSAGE_BYTES:
            raise ValueError(f"WebSocket message of {size} bytes exceeds {MAX_MESSAGE_BYTES}.")
        self._other._receive(MessageEvent(data))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Start the closing handshake; a second call does nothing."""
        if not (code in range(1000, 1004) or code in range(1007, 1015) or 3000 <= code < 5000):
            raise TypeError(f"Invalid WebSocket close code: {code}.")
        if len(reason.encode()) > MAX_CLOSE_REASON_BYTES:
            raise ValueError(f"WebSocket close reason is over {MAX_CLOSE_REASON_BYTES} bytes.")
        if not self._accepted:
            raise TypeError(_NOT_ACCEPTED)
        if self.readyState != OPEN:
            return
        self.readyState = CLOSING
        self._other._receive(CloseEvent(code, reason))

    def addEventListener(self, type: str, listener: Callable[[Any], Any]) -> None:
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown WebSocket event type {type!r}")
        self._listeners[type].append(listener)

    def removeEventListener(self, type: str, listener: Callable[[Any], Any]) -> None:
        if listener in self._listeners.get(type, ()):
            self._listeners[type].remove(listener)

    def serializeAttachment(self, value: Any) -> None:
        data = values.dumps(value)
        if len(data) > MAX_ATTACHMENT_BYTES:
            raise ValueError(
                f"A WebSocket attachment is limited to {MAX_ATTACHMENT_BYTES} bytes "
                f"serialized; this one is {len(data)}."
            )
        self._attachment = data

    def deserializeAttachment(self) -> Any:
        return None if self._attachment is None else values.loads(self._attachment)

    @property
    def hibernatable(self) -> bool:
        """Accepted with `ctx.acceptWebSocket` (not part of the JS API)."""
        return self._dispatcher is not None

    # ---- delivery --------------------------------------------------------------------

    @property
    def _other(self) -> "WebSocket":
        assert self._peer is not None, "a WebSocket comes from a WebSocketPair"
        return self._peer

    def when_accepted(self, callback: Callable[[], None]) -> None:
        """Run `callback` once this end is accepted (the local runtime's own hook)."""
        self._on_accept.append(callback)

    def _start(self, dispatcher: Dispatcher | None) -> None:
        if self._accepted:
            raise TypeError("This WebSocket has already been accepted.")
        self._accepted = True
        self._dispatcher = dispatcher
        self.readyState = OPEN
        for callback in self._on_accept:
            callback()
        self._on_accept.clear()
        self._schedule_drain()

    def _receive(self, event: Event) -> None:
        self._inbox.append(event)
        self._schedule_drain()

    def _schedule_drain(self) -> None:
        if self._accepted and self._inbox and not self._drain_scheduled:
            self._drain_scheduled = True
            asyncio.get_running_loop().call_soon(self._drain)

    def _drain(self) -> None:
        self._drain_scheduled = False
        while self._inbox:
            event = self._inbox.popleft()
            if isinstance(event, CloseEvent):
                if self.readyState == OPEN:  # the peer started it: answer, as workerd does
                    self._other._receive(event)
                self.readyState = CLOSED
            self._dispatch(event)

    def _dispatch(self, event: Event) -> None:
        if self._dispatcher is not None:
            self._dispatcher(self, event)
            return
        for listener in list(self._listeners[event.type]):
            try:
                result = listener(event)
            except Exception:  # a listener's own bug: report it, keep delivering
                log.exception("websocket.listener_failed type=%s", event.type)
                continue
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._tasks.add(task)
                task.add_done_callback(self._listener_done)

    def _listener_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("websocket.listener_failed", exc_info=task.exception())


class WebSocketPair:
    """`new WebSocketPair()`: `client, server = WebSocketPair.new().object_values()`."""

    def __init__(self) -> None:
        self.client, self.server = WebSocket(), WebSocket()
        self.client._peer, self.server._peer = self.server, self.client

    @classmethod
    def new(cls) -> "WebSocketPair":
        return cls()

    def object_values(self) -> tuple[WebSocket, WebSocket]:
        return self.client, self.server

    def __getitem__(self, index: int) -> WebSocket:
        return self.object_values()[index]
