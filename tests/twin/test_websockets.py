"""`WebSocketPair` and the Durable Object WebSocket Hibernation API."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.twin.do_fixtures import Twin
from twin.clock import ManualClock
from twin.durable_objects import DurableObjectNamespace, DurableObjectState
from twin.entrypoints import DurableObject
from twin.http import Request, Response
from twin.websockets import (
    CLOSED,
    CLOSING,
    CONNECTING,
    MAX_ATTACHMENT_BYTES,
    MAX_TAGS_PER_SOCKET,
    OPEN,
    WebSocket,
    WebSocketPair,
)

TIMEOUT_SECONDS = 2.0


def collect(ws: WebSocket, kind: str = "message") -> "asyncio.Queue[Any]":
    """Everything `ws` receives of `kind`, in order."""
    queue: asyncio.Queue[Any] = asyncio.Queue()
    ws.addEventListener(kind, queue.put_nowait)
    return queue


async def next_of(queue: "asyncio.Queue[Any]") -> Any:
    return await asyncio.wait_for(queue.get(), TIMEOUT_SECONDS)


# ---- WebSocketPair ------------------------------------------------------------------------


async def test_messages_sent_before_accept_arrive_in_order_once_accepted() -> None:
    client, server = WebSocketPair.new().object_values()
    received = collect(client)
    server.accept()
    for message in ("one", b"two", "three"):
        server.send(message)
    await asyncio.sleep(0)
    assert received.empty()
    assert client.readyState == CONNECTING
    client.accept()
    assert [(await next_of(received)).data for _ in range(3)] == ["one", b"two", "three"]
    assert client.readyState == OPEN


async def test_sending_needs_accept() -> None:
    _, server = WebSocketPair.new().object_values()
    with pytest.raises(TypeError, match=r"must call one of accept\(\)"):
        server.send("too early")


async def test_close_reaches_the_peer_with_code_and_reason_and_both_end_closed() -> None:
    client, server = WebSocketPair.new().object_values()
    client_closed, server_closed = collect(client, "close"), collect(server, "close")
    client.accept()
    server.accept()
    server.close(4001, "bye")
    assert server.readyState == CLOSING
    event = await next_of(client_closed)
    assert (event.code, event.reason, event.wasClean) == (4001, "bye", True)
    echo = await next_of(server_closed)
    assert (echo.code, echo.reason) == (4001, "bye")
    assert client.readyState == server.readyState == CLOSED
    with pytest.raises(TypeError, match="after close"):
        server.send("late")
    server.close()  # closing twice is harmless


async def test_close_codes_and_reasons_are_checked() -> None:
    _, server = WebSocketPair.new().object_values()
    server.accept()
    with pytest.raises(TypeError):
        server.close(1006)
    with pytest.raises(ValueError):
        server.close(1000, "x" * 124)


async def test_async_listeners_run_as_tasks() -> None:
    client, server = WebSocketPair.new().object_values()
    seen: asyncio.Queue[str] = asyncio.Queue()

    async def listener(event: Any) -> None:
        await asyncio.sleep(0)
        await seen.put(event.data)

    client.addEventListener("message", listener)
    client.accept()
    server.accept()
    server.send("hello")
    assert await next_of(seen) == "hello"


async def test_a_failing_listener_does_not_stop_delivery() -> None:
    client, server = WebSocketPair.new().object_values()
    client.addEventListener("message", lambda event: 1 / 0)
    received = collect(client)
    client.accept()
    server.accept()
    server.send("still delivered")
    assert (await next_of(received)).data == "still delivered"


def test_attachments_are_copies_and_capped() -> None:
    _, server = WebSocketPair.new().object_values()
    assert server.deserializeAttachment() is None
    attachment = {"user": "ada", "roles": ["owner"]}
    server.serializeAttachment(attachment)
    attachment["roles"].append("changed later")
    assert server.deserializeAttachment() == {"user": "ada", "roles": ["owner"]}
    with pytest.raises(ValueError, match=str(MAX_ATTACHMENT_BYTES)):
        server.serializeAttachment("x" * MAX_ATTACHMENT_BYTES)


# ---- hibernation --------------------------------------------------------------------------


class Room(DurableObject):
    """A chat room that keeps nothing in memory: every handler reads what it needs."""

    instances = 0

    def __init__(self, ctx: Any, env: Any) -> None:
        super().__init__(ctx, env)
        Room.instances += 1

    async def fetch(self, request: Request) -> Response:
        user = request.url.rsplit("/", 1)[-1]
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server, [f"user:{user}", "room"])
        server.serializeAttachment({"user": user})
        await self.ctx.storage.put("topic", "hibernation")
        return Response(None, 101, web_socket=client)

    async def webSocketMessage(self, ws: WebSocket, message: str | bytes) -> None:
        user = ws.deserializeAttachment()["user"]
        topic = await self.ctx.storage.get("topic")
        tags = self.ctx.getTags(ws)
        if message == "who":
            others = [s.deserializeAttachment()["user"] for s in self.ctx.getWebSockets("room")]
            ws.send(",".join(sorted(others)))
        else:
            ws.send(f"{user}|{topic}|{','.join(tags)}|{message}|instance {Room.instances}")

    async def webSocketClose(self, ws: WebSocket, code: int, reason: str, clean: bool) -> None:
        closed = await self.ctx.storage.get("closed") or []
        await self.ctx.storage.put("closed", [*closed, [code, reason, clean]])

    async def closed(self) -> list[Any]:
        return await self.ctx.storage.get("closed") or []

    async def count(self, tag: str) -> int:
        return len(self.ctx.getWebSockets(tag))


class Plain(DurableObject):
    """Accepts with the standard API: the socket keeps the instance alive."""

    async def fetch(self, request: Request) -> Response:
        client, server = WebSocketPair.new().object_values()
        server.accept()
        server.addEventListener("message", lambda event: server.send(f"echo {event.data}"))
        return Response(None, 101, web_socket=client)


@pytest.fixture
async def rooms(tmp_path: Path, clock: ManualClock) -> AsyncIterator[DurableObjectNamespace]:
    Room.instances = 0
    async with Twin(tmp_path, clock) as twin:
        yield twin.bind("ROOM", Room)


async def join(rooms: DurableObjectNamespace, user: str) -> tuple[WebSocket, "asyncio.Queue[Any]"]:
    response = await rooms.getByName("lobby").fetch(f"https://room/join/{user}")
    assert response.status == 101
    client = response.web_socket
    received = collect(client)
    client.accept()
    return client, received


async def test_a_hibernated_object_handles_messages_on_a_fresh_instance(
    rooms: DurableObjectNamespace,
) -> None:
    client, received = await join(rooms, "ada")
    client.send("hello")
    assert (await next_of(received)).data == "ada|hibernation|user:ada,room|hello|instance 1"
    assert rooms.evict(rooms.idFromName("lobby")) is True
    client.send("again")
    assert (await next_of(received)).data == "ada|hibernation|user:ada,room|again|instance 2"


async def test_get_web_sockets_filters_by_tag(rooms: DurableObjectNamespace) -> None:
    ada, ada_received = await join(rooms, "ada")
    await join(rooms, "bob")
    lobby = rooms.getByName("lobby")
    assert (await lobby.count("room"), await lobby.count("user:bob")) == (2, 1)
    assert await lobby.count("user:eve") == 0
    rooms.evict(lobby.id)
    ada.send("who")
    assert (await next_of(ada_received)).data == "ada,bob"


async def test_a_client_close_reaches_web_socket_close_and_drops_the_socket(
    rooms: DurableObjectNamespace,
) -> None:
    client, _ = await join(rooms, "ada")
    closed = collect(client, "close")
    rooms.evict(rooms.idFromName("lobby"))
    client.close(4000, "leaving")
    await next_of(closed)
    lobby = rooms.getByName("lobby")
    for _ in range(10):  # the handler runs as its own event
        if await lobby.closed():
            break
        await asyncio.sleep(0)
    assert await lobby.closed() == [[4000, "leaving", True]]
    assert await lobby.count("room") == 0


@pytest.mark.parametrize(
    ("tags", "error"),
    [([f"t{i}" for i in range(MAX_TAGS_PER_SOCKET + 1)], ValueError), (["x" * 257], ValueError)],
)
async def test_tags_are_limited(
    rooms: DurableObjectNamespace, tags: list[str], error: type[Exception]
) -> None:
    ctx = DurableObjectState(rooms.host(rooms.idFromName("lobby")))
    _, server = WebSocketPair.new().object_values()
    with pytest.raises(error):
        ctx.acceptWebSocket(server, tags)
    ctx.acceptWebSocket(server, [f"t{i}" for i in range(MAX_TAGS_PER_SOCKET)])
    assert len(ctx.getTags(server)) == MAX_TAGS_PER_SOCKET


async def test_a_socket_accepted_the_standard_way_keeps_its_object_alive(
    tmp_path: Path, clock: ManualClock
) -> None:
    async with Twin(tmp_path, clock) as twin:
        plain = twin.bind("PLAIN", Plain)
        response = await plain.getByName("p").fetch("https://plain/")
        client = response.web_socket
        received = collect(client)
        client.accept()
        assert plain.evict(plain.idFromName("p")) is False
        client.send("ping")
        assert (await next_of(received)).data == "echo ping"
        client.close()
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert plain.evict(plain.idFromName("p")) is True
