"""One terminal session and the connections that view it.

A Session is a shell on a terminal (a PTY, or a TTY in a container: see
agent/terminals/process.py) plus a byte-capped ring of its output. A Connection is one client
WebSocket; its attachment to a session is a Viewer with a cursor (the offset of the next
byte it gets). One writer task per connection pulls output from the rings, so a slow
connection holds back only itself. The terminal is read as fast as the fastest live viewer
takes the output; a viewer that falls a whole ring behind gets a `reset` and continues from
the oldest byte kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections import deque
from collections.abc import Callable
from enum import StrEnum
from typing import Protocol

from aiohttp import web

from agent.config import AgentConfig
from agent.shell import SESSION_TAG_ENV, ShellCommand
from agent.terminals.process import TerminalProcess, start_process
from agent.terminals.pty import ExitStatus
from agent.terminals.ring import Ring
from wire import terminal as p

MAX_OUTPUT_FRAME_BYTES = 128 * 1024  # one binary output frame; more waits for the next
MAX_QUEUED_CONTROL_FRAMES = 1024  # replies queued for a client that does not read them
VIEWER_STALL_SECONDS = 2.0  # a viewer whose socket accepts nothing for this long stops
#                             holding back the terminal (it gets a `reset` when it catches up)


def command_tagged(command: ShellCommand, tag: str) -> ShellCommand:
    """The command with `tag` (NAME=value) in the environment of what it starts."""
    name, _, value = tag.partition("=")
    return dataclasses.replace(command, env={**command.env, name: value})


# The injected clock: monotonic seconds (time.monotonic, unless a test holds the time).
Clock = Callable[[], float]


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class SessionState(StrEnum):
    RUNNING = "running"
    CLOSING = "closing"
    ENDED = "ended"


_TRANSITIONS = {
    SessionState.RUNNING: {SessionState.CLOSING, SessionState.ENDED},
    SessionState.CLOSING: {SessionState.ENDED},
    SessionState.ENDED: set(),
}


class TokenBucket:
    """`rate` frames per second with a burst of one second's worth."""

    def __init__(self, rate: int, clock: Clock) -> None:
        self.rate = rate
        self._clock = clock
        self._tokens = float(rate)
        self._at = clock()

    def take(self) -> bool:
        now = self._clock()
        self._tokens = min(self.rate, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


class Session:
    """One shell on a terminal, its output ring and its viewers."""

    def __init__(
        self,
        workspace_id: str,
        session_id: str,
        name: str,
        ring_bytes: int,
        clock: Clock,
        owner: str | None = None,
    ) -> None:
        self.workspace_id = workspace_id
        self.id = session_id
        self.name = name
        # The agent session that runs this command (a read-only tab), or None: a user's shell.
        self.owner = owner
        self.exit_status: ExitStatus | None = None  # once it has ended
        self.ring = Ring(ring_bytes)
        self.viewers: set[Viewer] = set()
        self.state = SessionState.RUNNING
        self.close_reason: p.ExitReason | None = None
        self.exit_json: str | None = None  # the exit frame, once the session has ended
        self.orphan_timer: Cancellable | None = None
        self.done = asyncio.Event()
        self.tasks: set[asyncio.Task[None]] = set()  # held so they are not collected
        self.stopper: asyncio.Task[None] | None = None  # the close ladder, once started
        self.closers: set[Connection] = set()  # connections that asked to close it
        # Flow control: pause reading while every live viewer is this far behind; a
        # whole read burst must still fit in the ring after that.
        self._pause_bytes = ring_bytes // 2
        self.read_burst_bytes = max(1, ring_bytes // 4)
        self._stall_check: asyncio.TimerHandle | None = None
        self._clock = clock
        self.process: TerminalProcess  # set by start()

    @property
    def tag(self) -> str:
        """NAME=value in the environment of every process of this session."""
        return f"{SESSION_TAG_ENV}={self.workspace_id}:{self.id}"

    async def start(self, command: ShellCommand, cols: int, rows: int, config: AgentConfig) -> None:
        """Start the shell (in a container, the way `config` says); raises SpawnError."""
        self.process = await start_process(
            command_tagged(command, self.tag),
            cols,
            rows,
            self._on_output,
            self.read_burst_bytes,
            config.container_exec,
            config.runc_root,
        )

    async def stop(self) -> None:
        """The close ladder (SIGHUP -> SIGTERM -> SIGKILL) for the shell."""
        await self.process.terminate()

    def move(self, state: SessionState) -> None:
        assert state in _TRANSITIONS[self.state], f"session {self.state} -> {state}"
        self.state = state

    def info(self) -> p.SessionInfo:
        return p.SessionInfo(
            session_id=self.id,
            name=self.name,
            live=self.state is not SessionState.ENDED,  # an agent's ended command stays listed
            cols=self.process.cols,
            rows=self.process.rows,
            offset=self.ring.end,
            viewers=len(self.viewers),
            read_only=self.owner is not None,
            owner=self.owner,
        )

    def _on_output(self, data: bytes) -> None:
        self.ring.append(data)
        for viewer in self.viewers:
            viewer.connection.wake()
        if self._should_pause():
            self.process.pause_reading()
            if self._stall_check is None:
                loop = asyncio.get_running_loop()
                self._stall_check = loop.call_later(VIEWER_STALL_SECONDS, self._recheck)

    def _should_pause(self) -> bool:
        now = self._clock()
        end = self.ring.end
        lags = [end - v.cursor for v in self.viewers if not v.connection.stalled(now)]
        return bool(lags) and min(lags) >= self._pause_bytes

    def _recheck(self) -> None:
        self._stall_check = None
        self.flow()
        if self.state is not SessionState.ENDED and self._should_pause():
            loop = asyncio.get_running_loop()
            self._stall_check = loop.call_later(VIEWER_STALL_SECONDS, self._recheck)

    def flow(self) -> None:
        """Resume reading once a viewer has caught up (or the lagging ones left/stalled)."""
        if self.state is not SessionState.ENDED and not self._should_pause():
            self.process.resume_reading()


class Viewer:
    """One connection's attachment to one session."""

    __slots__ = ("connection", "cursor", "header", "session")

    def __init__(self, connection: Connection, session: Session, cursor: int) -> None:
        self.connection = connection
        self.session = session
        self.cursor = cursor
        self.header = p.output_header(session.id)


class Connection:
    """One client WebSocket: its viewers, queued replies and the writer task."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        workspace_id: str,
        rate: int,
        clock: Clock,
    ) -> None:
        self.ws = ws
        self.workspace_id = workspace_id
        self.viewers: dict[str, Viewer] = {}
        self._clock = clock
        self.bucket = TokenBucket(rate, clock)
        self._control: deque[str] = deque()
        self._wake = asyncio.Event()
        self._send_started: float | None = None
        self.closing = False
        self.writer: asyncio.Task[None] | None = None

    def stalled(self, now: float) -> bool:
        return self._send_started is not None and now - self._send_started > VIEWER_STALL_SECONDS

    def wake(self) -> None:
        self._wake.set()

    def send(self, frame: p.ServerFrame) -> None:
        """Queue a control frame; it goes out before any further output."""
        if len(self._control) >= MAX_QUEUED_CONTROL_FRAMES:
            # The client sends requests but does not read the replies: drop it.
            self.closing = True
        else:
            self._control.append(frame.model_dump_json())
        self._wake.set()

    async def write_loop(self) -> None:
        with contextlib.suppress(ConnectionError):
            while not self.closing:
                await self._wake.wait()
                self._wake.clear()
                while await self._flush_once():
                    pass
            while await self._flush_once():  # closing: deliver what is already decided
                pass

    async def _flush_once(self) -> bool:
        sent = False
        while self._control:
            await self._send(self._control.popleft())
            sent = True
        for viewer in list(self.viewers.values()):
            sent = await self._pump(viewer) or sent
        return sent

    async def _pump(self, viewer: Viewer) -> bool:
        session = viewer.session
        if self.viewers.get(session.id) is not viewer:
            return False  # detached (or re-attached) while we were sending
        ring = session.ring
        if viewer.cursor < ring.start:
            viewer.cursor = ring.start
            await self._send(p.ResetFrame(session_id=session.id, offset=ring.start))
            return True
        data = ring.read(viewer.cursor, MAX_OUTPUT_FRAME_BYTES)
        if data:
            frame = b"".join((viewer.header, viewer.cursor.to_bytes(8, "big"), data))
            viewer.cursor += len(data)
            await self._send(frame)
            session.flow()
            return True
        if session.exit_json is not None:
            del self.viewers[session.id]
            session.viewers.discard(viewer)
            await self._send(session.exit_json)
            return True
        return False

    async def _send(self, frame: str | bytes | p.ResetFrame) -> None:
        self._send_started = self._clock()
        try:
            if isinstance(frame, bytes):
                await self.ws.send_bytes(frame)
            else:
                text = frame if isinstance(frame, str) else frame.model_dump_json()
                await self.ws.send_str(text)
        finally:
            self._send_started = None
