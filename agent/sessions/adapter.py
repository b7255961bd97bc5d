"""An ACP adapter process in a container, and the JSON-RPC transport over its stdio.

The ACP SDK's own NDJSON reader joins a line of any length; this transport bounds it:
a line over MAX_MESSAGE_BYTES is skipped whole, a line that is not a JSON object too, and
each is reported to `on_problem` (the session shows viewers an `agent_error` frame) while
the connection goes on. stderr is kept as a bounded tail for the crash frame.

Stopping climbs the terminals' ladder (agent/terminals/pty.py): its first rung, the hang
up, closes the adapter's stdin (an ACP adapter's way to end); then SIGTERM and SIGKILL go
to every process of the session in the container.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from agent.sessions.container import SESSION_TAG_ENV, Launcher
from agent.terminals.pty import climb_stop_ladder

log = logging.getLogger(__name__)

# Above the largest ACP message we expect (a file's content in fs/write_text_file, a
# tool call's diff); the reader's buffer holds one such line at most.
MAX_MESSAGE_BYTES = 16 * 1024 * 1024
STDERR_TAIL_BYTES = 4096
READ_CHUNK_BYTES = 64 * 1024
PROBLEM_EXCERPT_BYTES = 200  # of a skipped line, in the agent_error frame

ProblemHandler = Callable[[str, str], None]  # (code, message)


class StderrTail:
    """The last STDERR_TAIL_BYTES of a stream."""

    def __init__(self) -> None:
        self._data = b""

    def feed(self, chunk: bytes) -> None:
        self._data = (self._data + chunk)[-STDERR_TAIL_BYTES:]

    def text(self) -> str:
        return self._data.decode("utf-8", "replace")[-STDERR_TAIL_BYTES:]


class BoundedNdjsonTransport:
    """The ACP SDK's `Transport` (send/receive/close of JSON-RPC dicts) over a process's
    stdin and stdout, one JSON object per line, each line at most MAX_MESSAGE_BYTES."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, on_problem: ProblemHandler
    ) -> None:
        self._reader = reader  # its limit is MAX_MESSAGE_BYTES (AdapterProcess.start)
        self._writer = writer
        self._on_problem = on_problem
        self._write_lock = asyncio.Lock()

    async def send(self, message: dict[str, Any]) -> None:
        data = json.dumps(message, separators=(",", ":")).encode() + b"\n"
        async with self._write_lock:
            self._writer.write(data)
            await self._writer.drain()

    async def receive(self) -> dict[str, Any] | None:
        while True:
            line = await self._read_line()
            if line is None:
                return None
            if not line.strip():
                continue
            try:
                message = json.loads(line)
            except ValueError as exc:
                start = line[:PROBLEM_EXCERPT_BYTES].decode("utf-8", "replace")
                problem = f"not JSON ({exc}); the line was skipped: {start!r}"
                self._on_problem("malformed_message", problem)
                continue
            if not isinstance(message, dict):
                self._on_problem("malformed_message", "not a JSON-RPC object; skipped")
                continue
            return message

    async def _read_line(self) -> bytes | None:
        """The next line; an oversized one is reported and skipped to its end."""
        skipped = 0
        while True:
            try:
                line = await self._reader.readuntil(b"\n")
            except asyncio.LimitOverrunError as exc:
                skipped += exc.consumed
                await self._reader.readexactly(exc.consumed)
                continue
            except asyncio.IncompleteReadError as exc:
                return exc.partial if exc.partial and not skipped else None
            if skipped:
                total = skipped + len(line)
                self._on_problem(
                    "message_too_large",
                    f"a message of {total} bytes is over {MAX_MESSAGE_BYTES}; it was skipped",
                )
                skipped = 0
                continue
            return line

    async def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError):
            self._writer.close()


class AdapterProcess:
    """One adapter in a container: started by `start`, watched by `wait`, ended by `stop`."""

    def __init__(self, launcher: Launcher, tag: str) -> None:
        self.launcher = launcher
        self.tag = tag
        self.stderr = StderrTail()
        self.stopping = False
        self._process: asyncio.subprocess.Process | None = None
        self._exited = asyncio.Event()
        self._watcher: asyncio.Task[None] | None = None

    @property
    def tag_env(self) -> str:
        return f"{SESSION_TAG_ENV}={self.tag}"

    async def start(
        self, argv: Sequence[str], env: Mapping[str, str], on_problem: ProblemHandler
    ) -> BoundedNdjsonTransport:
        self._process = await self.launcher.start(
            argv, {**env, SESSION_TAG_ENV: self.tag}, limit=MAX_MESSAGE_BYTES
        )
        assert self._process.stdout and self._process.stdin and self._process.stderr
        self._watcher = asyncio.create_task(self._watch(self._process.stderr))
        return BoundedNdjsonTransport(self._process.stdout, self._process.stdin, on_problem)

    async def _watch(self, stderr: asyncio.StreamReader) -> None:
        assert self._process is not None
        while chunk := await stderr.read(READ_CHUNK_BYTES):
            self.stderr.feed(chunk)
        await self._process.wait()
        self._exited.set()

    async def wait(self) -> int | None:
        """The exit code of `docker exec` (the adapter's, or 126/127 when it could not
        start); None when it was never started."""
        if self._process is None:
            return None
        await self._exited.wait()
        return self._process.returncode

    async def stop(self) -> None:
        """close stdin -> SIGTERM -> SIGKILL, waiting after each, until it has exited."""
        self.stopping = True
        if self._process is None:
            return
        await climb_stop_ladder(self._send, self._exited)
        if not self._exited.is_set():
            log.warning("agent_session.not_stopped tag=%s", self.tag)
            self._process.kill()  # the CLI at least; the session ends all the same

    async def _send(self, signum: signal.Signals) -> None:
        assert self._process is not None and self._process.stdin is not None
        if signum == signal.SIGHUP:  # the hang up of a process on pipes: end of its input
            self._process.stdin.close()
            return
        try:
            await self.launcher.signal_tagged(self.tag_env, signum)
        except (OSError, TimeoutError) as exc:
            log.warning("agent_session.signal_failed tag=%s error=%r", self.tag, exc)
