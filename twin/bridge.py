"""Join one end of a twin `WebSocketPair` to a real network WebSocket.

Both the edge server (a browser's socket) and outbound `fetch` (an upstream's socket)
hand workerd-style code one end of a pair and keep the other here; `bridge` copies
frames both ways until either side closes, and passes the close code on.
"""

import asyncio
import contextlib
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class Closed:
    code: int = 1000
    reason: str = ""


Frame = str | bytes | Closed


class NetworkSocket(Protocol):
    async def receive(self) -> Frame: ...

    async def send(self, data: str | bytes) -> None: ...

    async def close(self, code: int, reason: str) -> None: ...


# Codes a peer may not put in a close frame; workerd reports them but sends 1000/1011.
_RESERVED_CLOSE_CODES = frozenset({1005, 1006, 1015})


async def bridge(end: Any, network: NetworkSocket) -> None:
    """Relay between `end` (a twin WebSocket) and `network` until one side closes."""
    outgoing: asyncio.Queue[Frame] = asyncio.Queue()
    end.addEventListener("message", lambda event: outgoing.put_nowait(event.data))
    end.addEventListener(
        "close", lambda event: outgoing.put_nowait(Closed(event.code, event.reason))
    )
    end.accept()

    async def network_to_end() -> Closed:
        while True:
            frame = await network.receive()
            if isinstance(frame, Closed):
                return frame
            end.send(frame)

    async def end_to_network() -> Closed:
        while True:
            frame = await outgoing.get()
            if isinstance(frame, Closed):
                return frame
            await network.send(frame)

    inbound = asyncio.create_task(network_to_end())
    outbound = asyncio.create_task(end_to_network())
    done, pending = await asyncio.wait({inbound, outbound}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    finished = done.pop()
    closed = finished.result() if finished.exception() is None else Closed(1011, "bridge failed")
    code = 1000 if closed.code in _RESERVED_CLOSE_CODES else closed.code
    if finished is inbound:
        _close_quietly(end, code, closed.reason)
    else:
        await network.close(code, closed.reason)


def _close_quietly(end: Any, code: int, reason: str) -> None:
    with contextlib.suppress(Exception):  # the other side may have closed it already
        end.close(code, reason)


async def relay(first: NetworkSocket, second: NetworkSocket) -> None:
    """Copy frames between two network sockets until one closes; pass its close on."""

    async def pump(source: NetworkSocket, sink: NetworkSocket) -> Closed:
        while True:
            frame = await source.receive()
            if isinstance(frame, Closed):
                return frame
            await sink.send(frame)

    forward = asyncio.create_task(pump(first, second))
    backward = asyncio.create_task(pump(second, first))
    done, pending = await asyncio.wait({forward, backward}, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
    finished = done.pop()
    closed = finished.result() if finished.exception() is None else Closed(1011, "relay failed")
    code = 1000 if closed.code in _RESERVED_CLOSE_CODES else closed.code
    await (second if finished is forward else first).close(code, closed.reason)
