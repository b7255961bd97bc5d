"""Durable Object namespaces, ids and stubs: one live instance per object id per process.

An object is addressed by a 64-hex id (the first 48 digits name it, the last 16 tie it to
its namespace, so a foreign id is refused) and constructed as `cls(ctx, env)` on its first
event. RPC copies arguments and results with `twin.values.clone`. An instance that
has been idle `IDLE_EVICTION_SECONDS` with no live work (no running event, `waitUntil`,
`blockConcurrencyWhile` or `accept()`ed socket) is replaced by a fresh one on its next
event, as Cloudflare evicts or hibernates it; `evict()` / `evict_idle()` do it at once.
Storage and hibernatable WebSockets belong to the object, not to the instance.
"""

import asyncio
import functools
import hashlib
import inspect
import logging
import re
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from twin.alarms import AlarmInfo, AlarmScheduler, deliver
from twin.errors import DurableObjectError
from twin.http import Request, Response
from twin.storage import DurableObjectStorage
from twin.values import clone
from twin.websockets import CloseEvent, Event, WebSocket, accept_observer

log = logging.getLogger("sam.local.durable_objects")

T = TypeVar("T")

IDLE_EVICTION_SECONDS = 10.0  # Cloudflare hibernates an idle object after about 10 s
MAX_HIBERNATABLE_SOCKETS = 32_768
_ID_BODY_HEX = 48
_ID_PATTERN = re.compile(r"[0-9a-f]{64}")


class DurableObjectId:
    __slots__ = ("_hex", "name")

    def __init__(self, hex_id: str, name: str | None = None) -> None:
        self._hex = hex_id
        self.name = name

    def toString(self) -> str:
        return self._hex

    def equals(self, other: "DurableObjectId") -> bool:
        return self == other

    def __eq__(self, other: object) -> bool:
        return isinstance(other, DurableObjectId) and other._hex == self._hex

    def __hash__(self) -> int:
        return hash(self._hex)

    def __str__(self) -> str:
        return self._hex

    def __repr__(self) -> str:
        return f"DurableObjectId({self._hex!r}, name={self.name!r})"


class DurableObjectNamespace:
    """A Durable Object binding: `env.NAME.getByName("x").method(...)`.

    Each object's storage is `<directory>/<id>.sqlite`; `env` is called on first use
    (the env holds this namespace); alarms are delivered through `alarms`.
    """

    def __init__(
        self,
        cls: type,
        directory: Path,
        env: Callable[[], Any],
        alarms: AlarmScheduler,
        *,
        idle_eviction_seconds: float | None = IDLE_EVICTION_SECONDS,
    ) -> None:
        self.cls = cls
        self.class_name = cls.__name__
        self.directory = directory
        self.env = env
        self.alarms = alarms
        self.idle_eviction_seconds = idle_eviction_seconds
        self._hosts: dict[str, _ObjectHost] = {}
        alarms.register(self)

    def idFromName(self, name: str) -> DurableObjectId:
        body = hashlib.sha256(f"{self.class_name}\0{name}".encode()).hexdigest()[:_ID_BODY_HEX]
        return DurableObjectId(body + self._tag(body), name)

    def idFromString(self, hex_id: str) -> DurableObjectId:
        if not isinstance(hex_id, str) or not _ID_PATTERN.fullmatch(hex_id.lower()):
            raise TypeError("Invalid Durable Object ID: must be 64 hex digits")
        hex_id = hex_id.lower()
        if hex_id[_ID_BODY_HEX:] != self._tag(hex_id[:_ID_BODY_HEX]):
            raise TypeError("Durable Object ID is not valid for this namespace.")
        return DurableObjectId(hex_id)

    def newUniqueId(self) -> DurableObjectId:
        body = secrets.token_hex(_ID_BODY_HEX // 2)
        return DurableObjectId(body + self._tag(body))

    def get(self, id: DurableObjectId) -> "DurableObjectStub":
        if not isinstance(id, DurableObjectId):
            raise TypeError("get() takes a DurableObjectId (use idFromName or getByName)")
        self.idFromString(id.toString())  # refuses another namespace's id
        return DurableObjectStub(self, id)

    def getByName(self, name: str) -> "DurableObjectStub":
        return DurableObjectStub(self, self.idFromName(name))

    def evict(self, id: DurableObjectId) -> bool:
        """Discard the object's instance now if it has no live work (test hook)."""
        host = self._hosts.get(id.toString())
        if host is None or host.instance is None or not host.idle():
            return False
        self._evict(host)
        return True

    def evict_idle(self) -> int:
        """Discard every instance with no live work; return how many went."""
        idle = [h for h in self._hosts.values() if h.instance is not None and h.idle()]
        for host in idle:
            self._evict(host)
        return len(idle)

    async def fire_alarm(self, object_id: str) -> int | None:
        host = self.host(DurableObjectId(object_id))

        async def handler(info: AlarmInfo) -> Any:
            return await host.run(lambda obj: obj.alarm(info))

        return await deliver(host.storage, self.alarms.clock, handler)

    def close(self) -> None:
        for host in self._hosts.values():
            host.close()
        self._hosts.clear()

    def host(self, id: DurableObjectId) -> "_ObjectHost":
        host = self._hosts.get(id.toString())
        if host is None:
            host = self._hosts[id.toString()] = _ObjectHost(self, id)
        return host

    def _evict(self, host: "_ObjectHost") -> None:
        host.evict()
        if not host.sockets:
            del self._hosts[host.id.toString()]

    def _tag(self, body: str) -> str:
        return hashlib.sha256(f"{self.class_name}\0{body}".encode()).hexdigest()[:16]


class DurableObjectStub:
    """`await stub.fetch(...)`, or `await stub.anyMethod(*args)` for RPC."""

    def __init__(self, namespace: DurableObjectNamespace, id: DurableObjectId) -> None:
        self._namespace = namespace
        self.id = id
        self.name = id.name

    async def fetch(self, resource: Request | str, **init: Any) -> Response:
        request = Request(resource, **init) if init or isinstance(resource, str) else resource
        if not callable(getattr(self._namespace.cls, "fetch", None)):
            raise DurableObjectError("Handler does not export a fetch() function.")
        return await self._run(lambda obj: obj.fetch(request))

    def __getattr__(self, name: str) -> Callable[..., Awaitable[Any]]:
        if name.startswith("__"):
            raise AttributeError(name)

        def method(*args: Any, **kwargs: Any) -> Awaitable[Any]:
            if kwargs:
                raise TypeError("RPC methods take positional arguments only")
            # Copied now, as JS serializes at the call: later changes are not seen.
            return self._call(name, [clone(arg) for arg in args])

        return method

    async def _call(self, name: str, args: list[Any]) -> Any:
        if name.startswith("_") or not callable(getattr(self._namespace.cls, name, None)):
            raise DurableObjectError(f'The RPC receiver does not implement the method "{name}".')
        return clone(await self._run(lambda obj: getattr(obj, name)(*args)))

    async def _run(self, call: Callable[[Any], Any]) -> Any:
        try:
            return await self._namespace.host(self.id).run(call)
        except Exception as exc:  # the object's own error reaches the caller by message
            raise DurableObjectError(str(exc), remote=True) from exc


class DurableObjectState:
    """The `ctx` an object is constructed with."""

    def __init__(self, host: "_ObjectHost") -> None:
        self._host = host
        self.id = host.id
        self.storage = host.storage

    def waitUntil(self, work: Awaitable[Any]) -> None:
        self._host.keep_alive(asyncio.ensure_future(work))

    def blockConcurrencyWhile(self, callback: Callable[[], Awaitable[T]]) -> "asyncio.Future[T]":
        """Hold other events back until `callback()` finishes (awaiting it is optional)."""
        return self._host.block(asyncio.ensure_future(callback()))

    def acceptWebSocket(self, ws: WebSocket, tags: list[str] | None = None) -> None:
        if len(self._host.sockets) >= MAX_HIBERNATABLE_SOCKETS:
            raise DurableObjectError(
                f"A Durable Object cannot accept more than {MAX_HIBERNATABLE_SOCKETS} WebSockets."
            )
        ws.accept_hibernatable(self._host.on_socket_event, list(tags or []))
        self._host.sockets.append(ws)

    def getWebSockets(self, tag: str | None = None) -> list[WebSocket]:
        return [ws for ws in self._host.sockets if tag is None or tag in ws.tags]

    def getTags(self, ws: WebSocket) -> list[str]:
        if not ws.hibernatable:
            raise TypeError("getTags() needs a WebSocket accepted with ctx.acceptWebSocket().")
        return list(ws.tags)

    def abort(self, reason: str = "") -> NoReturn:
        """Reset the object: the next event constructs a fresh instance."""
        self._host.instance = None
        raise DurableObjectError(reason or "Durable Object was aborted.")


class _ObjectHost:
    """What the namespace keeps for one object across instances."""

    def __init__(self, namespace: DurableObjectNamespace, id: DurableObjectId) -> None:
        self.namespace = namespace
        self.id = id
        self.storage = DurableObjectStorage(
            namespace.directory / f"{id.toString()}.sqlite",
            functools.partial(namespace.alarms.schedule, namespace.class_name, id.toString()),
            has_alarm_handler=callable(getattr(namespace.cls, "alarm", None)),
        )
        self.sockets: list[WebSocket] = []  # hibernatable ones: they outlive instances
        self.instance: Any = None
        self._busy = 0
        self._live: set[object] = set()  # waitUntil tasks and accept()ed sockets
        self._gate = asyncio.Event()  # clear while blockConcurrencyWhile runs
        self._gate.set()
        self._blockers = 0
        self._tasks: set[asyncio.Task[Any]] = set()  # hibernation events in flight
        self._idle_since = namespace.alarms.clock.now()

    def idle(self) -> bool:
        return self._busy == 0 and not self._live and self._gate.is_set()

    async def run(self, call: Callable[[Any], Any]) -> Any:
        """Deliver one event to the instance, constructing it if needed."""
        instance = self._current_instance()
        self._busy += 1
        try:
            if not self._gate.is_set():
                await self._gate.wait()
            token = accept_observer.set(self._pin_socket)
            try:
                result = call(instance)
                if inspect.isawaitable(result):
                    result = await result
            finally:
                accept_observer.reset(token)
            return result
        finally:
            self._busy -= 1
            self._idle_since = self.namespace.alarms.clock.now()

    def on_socket_event(self, ws: WebSocket, event: Event) -> None:
        if isinstance(event, CloseEvent):
            if ws in self.sockets:
                self.sockets.remove(ws)
            handler = "webSocketClose"
            args: tuple[Any, ...] = (ws, event.code, event.reason, event.wasClean)
        else:
            handler, args = "webSocketMessage", (ws, event.data)
        if callable(getattr(self.namespace.cls, handler, None)):
            task = asyncio.get_running_loop().create_task(self._handle(handler, args))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def keep_alive(self, task: "asyncio.Future[Any]") -> None:
        self._live.add(task)
        task.add_done_callback(self._work_done)

    def block(self, task: "asyncio.Future[T]") -> "asyncio.Future[T]":
        self._blockers += 1
        self._gate.clear()
        task.add_done_callback(self._unblock)
        return task

    def evict(self) -> None:
        self.instance = None
        self.storage.close()

    def close(self) -> None:
        for task in self._tasks | self._live:
            if isinstance(task, asyncio.Future):
                task.cancel()
        self.evict()

    def _current_instance(self) -> Any:
        timeout = self.namespace.idle_eviction_seconds
        now = self.namespace.alarms.clock.now()
        if timeout is not None and self.idle() and now - self._idle_since >= timeout:
            self.instance = None  # it would have hibernated by now
        if self.instance is None:
            self.instance = self.namespace.cls(DurableObjectState(self), self.namespace.env())
        return self.instance

    async def _handle(self, handler: str, args: tuple[Any, ...]) -> None:
        try:
            await self.run(lambda obj: getattr(obj, handler)(*args))
        except Exception:  # the object's bug: workerd logs it and the socket stays up
            log.exception("durable_object.%s_failed id=%s", handler, self.id)

    def _pin_socket(self, ws: WebSocket) -> None:
        self._live.add(ws)
        ws.addEventListener("close", lambda event: self._live.discard(ws))

    def _work_done(self, task: "asyncio.Future[Any]") -> None:
        self._live.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("durable_object.wait_until_failed id=%s", self.id, exc_info=task.exception())

    def _unblock(self, task: "asyncio.Future[Any]") -> None:
        self._blockers -= 1
        if self._blockers == 0:
            self._gate.set()
        if not task.cancelled() and task.exception() is not None:
            # Cloudflare resets an object whose blockConcurrencyWhile callback throws.
            log.error("durable_object.reset id=%s", self.id, exc_info=task.exception())
            self.instance = None
