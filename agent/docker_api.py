"""The few Docker Engine API calls a terminal needs, over the Engine's unix socket.

Plain requests go through aiohttp (`EngineAPI.call`). Attaching to an exec takes over the
connection: after `101 UPGRADED` it carries the raw bytes of the exec's TTY both ways
(`EngineAPI.hijack`, `AttachStream`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
MAX_RESPONSE_HEAD_BYTES = 64 * 1024


class EngineError(Exception):
    """The Docker Engine refused a request, or could not be reached."""


def engine_socket(environ: Mapping[str, str]) -> str:
    """The Engine's unix socket: DOCKER_HOST when it names one, else the default."""
    host = environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
    if not host.startswith("unix://"):
        raise EngineError(f"DOCKER_HOST={host} is not a unix:// socket, which terminals need")
    return host.removeprefix("unix://")


class EngineAPI:
    """The few Engine API calls a terminal needs, over its unix socket."""

    def __init__(self, socket_path: str) -> None:
        self.socket_path = socket_path
        self._prefix = ""

    @classmethod
    async def connect(cls, environ: Mapping[str, str]) -> EngineAPI:
        api = cls(engine_socket(environ))
        version = (await api.call("GET", "/version"))["ApiVersion"]
        api._prefix = f"/v{version}"  # what the CLI does; the unversioned API is deprecated
        return api

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """One request; the JSON answer (None when empty). Raises EngineError."""
        connector = aiohttp.UnixConnector(path=self.socket_path)
        url = f"http://docker{self._prefix}{path}"
        try:
            async with (
                aiohttp.ClientSession(connector=connector) as http,
                http.request(method, url, json=body) as response,
            ):
                data = await response.read()
        except aiohttp.ClientError as exc:
            raise self._unreachable(exc) from exc
        if response.status >= 400:
            raise EngineError(f"{method} {path}: {response.status} {_message(data)}")
        return json.loads(data) if data.strip() else None

    def _unreachable(self, exc: Exception) -> EngineError:
        return EngineError(f"cannot reach the Docker Engine at {self.socket_path}: {exc}")

    async def hijack(self, path: str, body: Any, stream: AttachStream) -> None:
        """POST `path` and take over the connection as a raw stream (`stream` gets it).

        aiohttp upgrades connections to WebSockets only; aiodocker reaches into aiohttp's
        private connection internals for this, which broke with aiohttp 3.9 (aiodocker
        #833). The request is one fixed HTTP/1.1 POST, so it is written here.
        """
        payload = json.dumps(body).encode()
        head = (
            f"POST {self._prefix}{path} HTTP/1.1\r\n"
            "Host: docker\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(payload)}\r\n"
            "Connection: Upgrade\r\n"
            "Upgrade: tcp\r\n"
            "\r\n"
        )
        loop = asyncio.get_running_loop()
        try:
            transport, _ = await loop.create_unix_connection(lambda: stream, self.socket_path)
        except OSError as exc:
            raise self._unreachable(exc) from exc
        transport.write(head.encode() + payload)
        try:
            await stream.upgraded
        except BaseException:
            transport.close()
            raise


class AttachStream(asyncio.BufferedProtocol):
    """The hijacked connection: the HTTP response head, then the TTY's raw output.

    A BufferedProtocol so that one read is at most `read_burst_bytes`, as on a PTY.
    """

    def __init__(self, on_output: Callable[[bytes], None], read_burst_bytes: int) -> None:
        self._on_output = on_output
        self._buffer = bytearray(read_burst_bytes)
        self._head = bytearray()
        self.upgraded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.ended = asyncio.Event()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def get_buffer(self, sizehint: int) -> bytearray:
        return self._buffer

    def buffer_updated(self, nbytes: int) -> None:
        data = bytes(memoryview(self._buffer)[:nbytes])
        if self.upgraded.done():
            self._on_output(data)
        else:
            self._head += data
            self._read_head()

    def _read_head(self) -> None:
        end = self._head.find(b"\r\n\r\n")
        if end < 0:
            if len(self._head) > MAX_RESPONSE_HEAD_BYTES:
                self._fail("the Engine's answer has no end of headers")
            return
        lines = bytes(self._head[:end]).decode("latin-1").split("\r\n")
        try:
            status = int(lines[0].split()[1])
        except (IndexError, ValueError):
            self._fail(f"not an HTTP answer: {lines[0][:100]!r}")
            return
        body = bytes(self._head[end + 4 :])
        if status in (101, 200):  # 200: an Engine that hijacks without saying so
            self._head.clear()
            self.upgraded.set_result(None)
            if body:
                self._on_output(body)
            return
        headers = dict(line.lower().split(":", 1) for line in lines[1:] if ":" in line)
        length = int(headers.get("content-length", "0").strip() or 0)
        if len(body) >= length:
            self._fail(f"{lines[0].split(' ', 1)[1]}: {_message(body)}")

    def _fail(self, message: str) -> None:
        if not self.upgraded.done():
            self.upgraded.set_exception(EngineError(message))
        if self.transport is not None:
            self.transport.close()

    def eof_received(self) -> bool:
        return False  # the process has ended: close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"the Engine closed the connection: {exc or 'no answer'}")
        self.ended.set()


def _message(body: bytes) -> str:
    """The `message` of an Engine error answer, else its text."""
    try:
        return str(json.loads(body)["message"])
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace").strip()[:500]
