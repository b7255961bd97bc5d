"""The browser's side of the terminal protocol (docs/protocols/terminal.md), for tests.

Written from the protocol page, not from wire/terminal.py, so that a drift between the
page and the agent shows up as a failing test (test_proxy.py also checks this codec
against the golden frames in tests/golden/terminal/):

    output (agent → client): 0x01 | id_len u8 | session id | offset u64 BE | bytes
    input  (client → agent): 0x02 | id_len u8 | session id | bytes

    async with TerminalClient.connect(url, host="ws-w1.localhost:8787", token=t) as term:
        session = await term.create()
        await term.run(session, "echo $((6*7))")
        await term.wait_for_line(session, b"42")

Each client checks, per session, that output frames are contiguous (every frame's
offset equals the previous end, except right after `created`/`attached`/`reset`), so a
proxy that dropped, duplicated or reordered bytes fails the test that used it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import struct
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import aiohttp

OUTPUT_FRAME = 0x01
INPUT_FRAME = 0x02
OFFSET = struct.Struct(">Q")
TIMEOUT_SECONDS = 30.0
PROMPT = re.compile(rb"[$#] $")


class ProtocolViolation(AssertionError):
    """The server sent something the protocol page does not allow."""


def encode_input(session_id: str, data: bytes) -> bytes:
    raw = session_id.encode("ascii")
    return bytes((INPUT_FRAME, len(raw))) + raw + data


def decode_output(frame: bytes) -> tuple[str, int, bytes]:
    if len(frame) < 2 or frame[0] != OUTPUT_FRAME:
        raise ProtocolViolation(f"not an output frame: {frame[:16]!r}")
    id_len = frame[1]
    header = 2 + id_len + OFFSET.size
    if id_len == 0 or len(frame) < header:
        raise ProtocolViolation(f"output frame cut short: {frame[:16]!r}")
    session_id = frame[2 : 2 + id_len].decode("ascii")
    (offset,) = OFFSET.unpack_from(frame, 2 + id_len)
    return session_id, offset, frame[header:]


class TerminalClient:
    """One WebSocket to a workspace's terminals; records every frame it receives."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._http = http
        self.ws = ws
        self.frames: list[dict[str, Any]] = []
        self.output: dict[str, bytearray] = {}
        self.end: dict[str, int] = {}
        self._changed = asyncio.Event()
        self._ids = itertools.count(1)
        self.closed = False
        self.close_code: int | None = None
        self._reader = asyncio.create_task(self._read())

    @classmethod
    @asynccontextmanager
    async def connect(
        cls,
        url: str,
        host: str | None = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> AsyncIterator[TerminalClient]:
        """`url` is http://127.0.0.1:PORT/workspaces/{id}/terminal/ws; `host` the Host
        header (e.g. ws-{id}.localhost:PORT); `token` goes in ?token=."""
        sent = dict(headers or {})
        if host is not None:
            sent["Host"] = host
        target = url + (f"?{urlencode({'token': token})}" if token is not None else "")
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(target, headers=sent, max_msg_size=0, autoping=True)
        except BaseException:
            await http.close()
            raise
        client = cls(http, ws)
        try:
            yield client
        finally:
            await client.close()

    # --- reading ------------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type is aiohttp.WSMsgType.BINARY:
                    self._on_output(message.data)
                elif message.type is aiohttp.WSMsgType.TEXT:
                    self._on_control(json.loads(message.data))
                self._changed.set()
        finally:
            self.closed = True
            self.close_code = self.ws.close_code
            self._changed.set()

    def _on_output(self, frame: bytes) -> None:
        session_id, offset, data = decode_output(frame)
        expected = self.end.get(session_id)
        if expected is None:
            raise ProtocolViolation(f"output for {session_id} before created/attached")
        if offset != expected:
            raise ProtocolViolation(f"{session_id}: frame at {offset}, expected {expected}")
        self.output.setdefault(session_id, bytearray()).extend(data)
        self.end[session_id] = offset + len(data)

    def _on_control(self, frame: dict[str, Any]) -> None:
        self.frames.append(frame)
        kind = frame.get("type")
        if kind == "created":
            session_id = frame["session"]["session_id"]
            self.end[session_id] = 0
            self.output[session_id] = bytearray()
        elif kind == "attached":
            session_id = frame["session"]["session_id"]
            if frame["reset"]:
                self.output[session_id] = bytearray()
            self.end[session_id] = frame["offset"]
            self.output.setdefault(session_id, bytearray())
        elif kind == "reset":
            self.output[frame["session_id"]] = bytearray()
            self.end[frame["session_id"]] = frame["offset"]

    async def until(self, check: Callable[[], Any], timeout: float = TIMEOUT_SECONDS) -> Any:
        """Wait until `check()` is truthy; its value. Raises if the socket closes first."""
        async with asyncio.timeout(timeout):
            while not (result := check()):
                if self.closed:
                    if self._reader.done() and not self._reader.cancelled():
                        self._reader.result()  # a ProtocolViolation, if that ended it
                    raise AssertionError(
                        f"the socket closed ({self.close_code}) while waiting; "
                        f"frames: {self.frames[-5:]}"
                    )
                self._changed.clear()
                await self._changed.wait()
            return result

    async def closed_by_server(self, timeout: float = TIMEOUT_SECONDS) -> int | None:
        """Wait until the other side closes the socket; its close code."""
        await asyncio.wait({self._reader}, timeout=timeout)
        assert self.closed, f"the socket is still open after {timeout:.0f}s"
        return self.close_code

    def reply(self, request_id: str) -> dict[str, Any] | None:
        return next((f for f in self.frames if f.get("request_id") == request_id), None)

    # --- requests -----------------------------------------------------------------------

    async def request(self, kind: str, **fields: Any) -> dict[str, Any]:
        """Send a JSON frame; its direct reply (or error frame)."""
        request_id = f"r{next(self._ids)}"
        await self.ws.send_str(json.dumps({"type": kind, "request_id": request_id, **fields}))
        return await self.until(lambda: self.reply(request_id))

    async def create(self, cols: int = 80, rows: int = 24, prompt: bool = True) -> str:
        """A new session; waits for its first prompt unless `prompt` is False."""
        created = await self.request("create", cols=cols, rows=rows)
        if created["type"] != "created":
            raise AssertionError(f"create failed: {created}")
        session_id = created["session"]["session_id"]
        if prompt:
            await self.until(lambda: PROMPT.search(bytes(self.output.get(session_id, b""))))
        return session_id

    async def attach(self, session_id: str, offset: int | None) -> dict[str, Any]:
        attached = await self.request("attach", session_id=session_id, offset=offset)
        if attached["type"] != "attached":
            raise AssertionError(f"attach failed: {attached}")
        return attached

    async def end_session(self, session_id: str) -> dict[str, Any]:
        """`close`: answered by an `exit` frame (to every viewer, without a request id)."""
        await self.ws.send_str(json.dumps({"type": "close", "session_id": session_id}))
        return await self.until(
            lambda: next(
                (
                    f
                    for f in self.frames
                    if f.get("type") == "exit" and f.get("session_id") == session_id
                ),
                None,
            )
        )

    async def type(self, session_id: str, data: bytes) -> None:
        """Keystrokes, as a binary input frame (what the SPA sends)."""
        await self.ws.send_bytes(encode_input(session_id, data))

    async def run(self, session_id: str, command: str) -> None:
        await self.type(session_id, command.encode() + b"\r")

    async def wait_for(
        self, session_id: str, needle: bytes, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        try:
            await self.until(lambda: needle in self.output.get(session_id, b""), timeout)
        except TimeoutError:
            tail = bytes(self.output.get(session_id, b""))[-400:]
            raise AssertionError(f"{needle!r} never arrived; output ends {tail!r}") from None

    async def wait_for_line(
        self, session_id: str, line: bytes, timeout: float = TIMEOUT_SECONDS
    ) -> None:
        """A whole output line equal to `line`: not the echo of the command that prints it.
        (Shells may put an escape sequence before it, e.g. bracketed paste off, then `\r`.)"""
        pattern = re.compile(rb"[\r\n]" + re.escape(line) + rb"\r\n")
        try:
            await self.until(
                lambda: pattern.search(bytes(self.output.get(session_id, b""))), timeout
            )
        except TimeoutError:
            tail = bytes(self.output.get(session_id, b""))[-400:]
            raise AssertionError(f"no line {line!r}; output ends {tail!r}") from None

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self._http.close()
