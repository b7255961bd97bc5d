"""TerminalManager through a real aiohttp server on loopback, with real PTYs and real bash.

The manager's clock is a FakeClock that stands still unless a test moves it: frame rates
and stalled viewers are judged on it, so a loaded machine cannot make a busy viewer look
stalled or let a burst of frames earn extra tokens.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from agent.config import AgentConfig
from agent.errors import WorkspaceNotRunning
from agent.persistence import Store
from agent.shell import ShellCommand
from agent.terminals.manager import TerminalManager
from agent.terminals.pty import HUP_WAIT_SECONDS, TERM_WAIT_SECONDS
from agent.terminals.session import VIEWER_STALL_SECONDS
from tests.support.agent import AgentProcess
from tests.support.control_plane import ControlPlaneDouble
from tests.support.terminal_server import serve_terminals
from wire import terminal as p

WORKSPACE = "ws-1"
STOPPED_WORKSPACE = "ws-stopped"
TIMEOUT_SECONDS = 30.0  # for one awaited condition; generous, so load cannot trip it
POLL_SECONDS = 0.02  # for conditions nothing signals (files, the manager's tabs)
SHELL = ["bash", "--norc", "--noprofile", "-i"]
SHELL_ENV = {"TERM": "xterm-256color", "PS1": "$ ", "LANG": "C.UTF-8"}


class FakeTimer:
    """The injected orphan timer: records what was scheduled; the test fires it."""

    @dataclass
    class Handle:
        delay: float
        callback: Callable[[], None]
        cancelled: bool = False

        def cancel(self) -> None:
            self.cancelled = True

    def __init__(self) -> None:
        self.handles: list[FakeTimer.Handle] = []

    def __call__(self, delay: float, callback: Callable[[], None]) -> FakeTimer.Handle:
        handle = FakeTimer.Handle(delay, callback)
        self.handles.append(handle)
        return handle

    @property
    def pending(self) -> list[FakeTimer.Handle]:
        return [h for h in self.handles if not h.cancelled]

    def fire(self) -> None:
        for handle in self.pending:
            handle.cancelled = True
            handle.callback()


class FakeClock:
    """The injected monotonic clock: it moves only when the test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


async def eventually(predicate: Callable[[], Any], timeout: float = TIMEOUT_SECONDS) -> Any:
    """Poll `predicate` until it is true; for conditions that no event signals."""
    async with asyncio.timeout(timeout):
        while not (result := predicate()):
            await asyncio.sleep(POLL_SECONDS)
        return result


@dataclass
class Terminals:
    manager: TerminalManager
    store: Store
    config: AgentConfig
    timer: FakeTimer
    clock: FakeClock
    url: str
    http: aiohttp.ClientSession
    clients: list[Client] = field(default_factory=list)

    async def connect(self, workspace: str = WORKSPACE, read_rate: float = 0.0) -> Client:
        ws = await self.http.ws_connect(f"{self.url}/{workspace}", max_msg_size=0)
        client = Client(ws, read_rate)
        self.clients.append(client)
        return client


class Client:
    """One WebSocket: records every frame; output per session with its offsets checked."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse, read_rate: float = 0.0) -> None:
        self.ws = ws
        self.read_rate = read_rate  # bytes per second this client takes; 0: as fast as it can
        self.frames: list[dict[str, Any]] = []
        self.output: dict[str, bytearray] = {}
        self.chunks: dict[str, list[bytes]] = {}
        self.end: dict[str, int] = {}
        self.changed = asyncio.Event()
        self.closed = False
        self._task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        try:
            await self._read_frames()
        finally:
            self.closed = True
            self.changed.set()

    async def _read_frames(self) -> None:
        async for message in self.ws:
            if message.type is aiohttp.WSMsgType.BINARY:
                session_id, offset, data = p.decode_output(message.data)
                assert offset == self.end.get(session_id, offset), "gap or overlap in output"
                self.output.setdefault(session_id, bytearray()).extend(data)
                self.chunks.setdefault(session_id, []).append(data)
                self.end[session_id] = offset + len(data)
            else:
                frame = json.loads(message.data)
                self.frames.append(frame)
                if frame["type"] in ("created", "attached"):
                    session_id = frame["session"]["session_id"]
                    self.end[session_id] = frame.get("offset", 0)
                if frame["type"] == "reset":
                    self.end[frame["session_id"]] = frame["offset"]
            self.changed.set()
            if self.read_rate:
                await asyncio.sleep(len(message.data) / self.read_rate)

    async def until(self, predicate: Callable[[], Any], timeout: float = TIMEOUT_SECONDS) -> Any:
        async with asyncio.timeout(timeout):
            while not (result := predicate()):
                if self.closed:
                    if self._task.done() and not self._task.cancelled():
                        self._task.result()  # the reader's own assertion, if it failed
                    raise AssertionError(f"websocket closed while waiting; frames {self.frames}")
                self.changed.clear()
                await self.changed.wait()
            return result

    async def send(self, **frame: Any) -> None:
        await self.ws.send_str(json.dumps(frame))

    async def type(self, session_id: str, text: str | bytes) -> None:
        data = text.encode() if isinstance(text, str) else text
        await self.ws.send_bytes(p.encode_input(session_id, data))

    def find(self, kind: str, **match: Any) -> dict[str, Any] | None:
        for frame in self.frames:
            if frame["type"] == kind and all(frame.get(k) == v for k, v in match.items()):
                return frame
        return None

    async def frame(self, kind: str, **match: Any) -> dict[str, Any]:
        return await self.until(lambda: self.find(kind, **match))

    async def create(self, **fields: Any) -> str:
        request_id = f"create-{len(self.frames)}-{time.monotonic()}"
        await self.send(type="create", request_id=request_id, **fields)
        frame = await self.until(
            lambda: (
                self.find("created", request_id=request_id)
                or self.find("error", request_id=request_id)
            )
        )
        assert frame["type"] == "created", frame
        session_id = frame["session"]["session_id"]
        await self.until(lambda: re.search(rb"[$#] ", self.output.get(session_id, b"")))
        return session_id

    async def attach(self, session_id: str, offset: int | None) -> dict[str, Any]:
        request_id = f"attach-{len(self.frames)}"
        await self.send(type="attach", request_id=request_id, session_id=session_id, offset=offset)
        return await self.frame("attached", request_id=request_id)

    async def wait_output(self, session_id: str, needle: bytes) -> None:
        try:
            await self.until(lambda: needle in self.output.get(session_id, b""))
        except TimeoutError:
            seen = bytes(self.output.get(session_id, b""))[-600:]
            raise AssertionError(f"{needle!r} not in the output; its end: {seen!r}") from None

    async def close(self) -> None:
        await self.ws.close()
        await self._task


StartTerminals = Callable[..., Awaitable[Terminals]]


@pytest.fixture
async def start_terminals(tmp_path: Path) -> AsyncIterator[StartTerminals]:
    runners: list[tuple[web.AppRunner, Terminals]] = []

    async def start(
        env: dict[str, str] | None = None, shell: ShellCommand | None = None
    ) -> Terminals:
        config = AgentConfig.from_environ(
            {
                "SAM_NODE_ID": "node-test",
                "SAM_CONTROL_PLANE_URL": "http://127.0.0.1:9",
                "SAM_STATE_DIR": str(tmp_path),
                **(env or {}),
            }
        )
        store = Store(tmp_path / "agent.db")
        command = shell or ShellCommand(SHELL, SHELL_ENV, str(tmp_path))

        async def shell_for(workspace_id: str) -> ShellCommand:
            if workspace_id == STOPPED_WORKSPACE:
                raise WorkspaceNotRunning(f"workspace {workspace_id} is stopped")
            return command

        timer, clock = FakeTimer(), FakeClock()
        manager = TerminalManager(config, store, shell_for, schedule=timer, clock=clock)

        runner, url = await serve_terminals(manager)
        terminals = Terminals(manager, store, config, timer, clock, url, aiohttp.ClientSession())
        runners.append((runner, terminals))
        return terminals

    yield start
    for runner, terminals in runners:
        for client in terminals.clients:
            await client.ws.close()
        await terminals.http.close()
        await terminals.manager.close()
        await runner.cleanup()
        terminals.store.close()


@pytest.fixture
async def terminals(start_terminals: StartTerminals) -> Terminals:
    return await start_terminals()


def _offset(terminals: Terminals, session_id: str) -> int:
    """The end offset of a live session's output, as the agent lists it."""
    [tab] = [t for t in terminals.manager.tabs(WORKSPACE) if t["session_id"] == session_id]
    return tab["offset"]


def marker(n: int) -> tuple[str, bytes]:
    """A command that prints DONE<n>, and what it prints (never in its own echo)."""
    return f"echo DONE$(({n}-1+1))", f"DONE{n}".encode()


# -- input, output, resize ---------------------------------------------------------------


async def test_input_output_and_json_input(terminals: Terminals) -> None:
    client = await terminals.connect()
    session_id = await client.create(name="main", cols=100, rows=30)
    created = client.find("created")
    assert created["session"] == {
        "session_id": session_id,
        "name": "main",
        "live": True,
        "cols": 100,
        "rows": 30,
        "offset": 0,
        "viewers": 1,
        "read_only": False,
        "owner": None,
    }
    await client.type(session_id, "echo sum=$((40+2))\r")
    await client.wait_output(session_id, b"sum=42")
    await client.send(type="input", session_id=session_id, data="echo json-$((1+1))\r")
    await client.wait_output(session_id, b"json-2")
    assert client.end[session_id] == len(client.output[session_id])


async def test_resize_then_stty_size_and_clamping(terminals: Terminals) -> None:
    client = await terminals.connect()
    session_id = await client.create()
    await client.send(type="resize", request_id="r1", session_id=session_id, cols=132, rows=43)
    assert (await client.frame("resized", request_id="r1"))["cols"] == 132
    await client.type(session_id, "stty size\r")
    await client.wait_output(session_id, b"43 132")
    await client.send(type="resize", request_id="r2", session_id=session_id, cols=10**6, rows=0)
    resized = await client.frame("resized", request_id="r2")
    assert (resized["cols"], resized["rows"]) == (500, 1)


# -- viewers and reattach ----------------------------------------------------------------


async def test_two_viewers_see_the_same_bytes(terminals: Terminals) -> None:
    first = await terminals.connect()
    session_id = await first.create()
    second = await terminals.connect()
    attached = await second.attach(session_id, 0)
    assert (attached["offset"], attached["reset"], attached["session"]["viewers"]) == (0, False, 2)
    command, done = marker(1)
    await first.type(session_id, f"for i in $(seq 1 3000); do echo line-$i; done; {command}\r")
    await first.wait_output(session_id, done)
    await second.wait_output(session_id, done)
    await first.until(lambda: first.end[session_id] == second.end[session_id])
    assert first.output[session_id] == second.output[session_id]
    assert b"line-3000\r\n" in second.output[session_id]


async def test_drop_both_websockets_and_reattach_with_offsets(terminals: Terminals) -> None:
    first = await terminals.connect()
    session_id = await first.create()
    second = await terminals.connect()
    await second.attach(session_id, 0)
    command, done = marker(2)
    await first.type(
        session_id, f"for i in $(seq 1 300); do echo tick-$i; sleep 0.005; done; {command}\r"
    )
    await first.wait_output(session_id, b"tick-40\r\n")
    await second.wait_output(session_id, b"tick-40\r\n")
    await first.close()
    await second.close()
    seen_first, seen_second = bytes(first.output[session_id]), bytes(second.output[session_id])
    assert len(terminals.timer.pending) == 1  # orphaned: the grace timer runs
    seen = max(len(seen_first), len(seen_second))
    await eventually(lambda: _offset(terminals, session_id) > seen)  # output with nobody watching

    again_first, again_second = await terminals.connect(), await terminals.connect()
    assert not (await again_first.attach(session_id, len(seen_first)))["reset"]
    assert not (await again_second.attach(session_id, len(seen_second)))["reset"]
    assert terminals.timer.pending == []  # a viewer is back: no expiry
    await again_first.wait_output(session_id, done)
    await again_second.wait_output(session_id, done)

    continuous = await terminals.connect()
    assert (await continuous.attach(session_id, None))["offset"] == 0  # the ring holds it all
    await continuous.wait_output(session_id, done)
    await continuous.until(lambda: continuous.end[session_id] >= again_first.end[session_id])
    whole = bytes(continuous.output[session_id])[: again_first.end[session_id]]
    assert seen_first + again_first.output[session_id] == whole
    assert seen_second + again_second.output[session_id][: len(whole) - len(seen_second)] == whole
    assert b"tick-300\r\n" in whole


async def test_reattach_with_an_evicted_offset_gets_a_reset_and_the_whole_ring(
    start_terminals: StartTerminals,
) -> None:
    ring_bytes = 4096
    terminals = await start_terminals({"SAM_TERMINAL_RING_BYTES": str(ring_bytes)})
    first = await terminals.connect()
    session_id = await first.create()
    command, done = marker(3)
    await first.type(session_id, f"head -c 20000 /dev/zero | tr '\\0' a; {command}\r")
    await first.wait_output(session_id, done)
    await first.until(lambda: first.output[session_id].endswith(b"$ "))  # the prompt after it
    stream = bytes(first.output[session_id])

    late = await terminals.connect()
    attached = await late.attach(session_id, 10)
    end = attached["session"]["offset"]
    assert end == len(stream)
    assert attached["reset"] is True
    assert attached["offset"] == end - ring_bytes
    await late.until(lambda: late.end[session_id] == end)
    assert bytes(late.output[session_id]) == stream[-ring_bytes:]

    future = await terminals.connect()
    attached = await future.attach(session_id, end + 100)  # an offset it cannot have seen
    assert (attached["reset"], attached["offset"]) == (True, end - ring_bytes)


async def test_a_slow_viewer_does_not_hold_back_a_fast_one(terminals: Terminals) -> None:
    fast = await terminals.connect()
    session_id = await fast.create()
    slow = await terminals.connect()
    await slow.attach(session_id, None)
    slow._task.cancel()  # stop reading: its socket fills up and its sends block
    total = 40_000_000
    command, done = marker(4)
    await fast.type(session_id, f"head -c {total} /dev/zero | tr '\\0' b; {command}\r")
    await fast.until(lambda: done in fast.output[session_id][-200:], timeout=60)
    assert fast.output[session_id].count(b"b") >= total
    assert fast.find("reset") is None

    slow.frames.clear()
    slow.output.pop(session_id, None)
    slow.closed = False
    slow._task = asyncio.create_task(slow._read())
    reset = await slow.frame("reset", session_id=session_id)
    assert reset["offset"] > 0
    await slow.until(lambda: done in slow.output.get(session_id, b""))


async def test_a_lone_slow_viewer_paces_the_shell_and_loses_nothing(
    start_terminals: StartTerminals,
) -> None:
    terminals = await start_terminals({"SAM_TERMINAL_RING_BYTES": "65536"})
    client = await terminals.connect(read_rate=20_000_000)
    session_id = await client.create()
    total = 15_000_000  # more than the socket buffers between us hold
    command, done = marker(7)
    await client.type(session_id, f"head -c {total} /dev/zero | tr '\\0' q; {command}\r")
    await client.until(lambda: done in client.output[session_id][-200:], timeout=60)
    assert client.find("reset") is None
    assert client.output[session_id].count(b"q") == total + 1  # + the echoed command's q


async def test_a_lone_viewer_that_stops_reading_does_not_stall_the_shell(
    terminals: Terminals, tmp_path: Path
) -> None:
    client = await terminals.connect()
    session_id = await client.create()
    client._task.cancel()
    flag = tmp_path / "finished"
    await client.type(session_id, f"head -c 20000000 /dev/zero | tr '\\0' c; touch {flag}\r")

    def stalled_long_enough() -> bool:
        # Time passes for the agent while its send to the viewer stays blocked; the
        # session re-checks on its own timer and reads on without the viewer.
        terminals.clock.advance(VIEWER_STALL_SECONDS)
        return flag.exists()

    await eventually(stalled_long_enough)


# -- ends of sessions ------------------------------------------------------------------


async def test_exit_ends_the_session_with_its_code_and_removes_the_tab(
    terminals: Terminals,
) -> None:
    client = await terminals.connect()
    session_id = await client.create(name="doomed")
    assert [t["session_id"] for t in terminals.store.tabs(WORKSPACE)] == [session_id]
    await client.type(session_id, "echo bye; exit 3\r")
    exit_frame = await client.frame("exit", session_id=session_id)
    assert (exit_frame["exit_code"], exit_frame["signal"], exit_frame["reason"]) == (
        3,
        None,
        "exited",
    )
    assert b"bye" in client.output[session_id]  # output before the exit is all there
    assert terminals.store.tabs(WORKSPACE) == []
    await client.send(type="list", request_id="l1")
    assert (await client.frame("sessions", request_id="l1"))["sessions"] == []
    await client.type(session_id, "echo hello?\r")
    error = await client.frame("error", session_id=session_id)
    assert error["code"] == "unknown_session"


async def test_utf8_split_across_pty_reads_arrives_intact(terminals: Terminals) -> None:
    client = await terminals.connect()
    session_id = await client.create()
    command, done = marker(5)
    # The euro sign's first two bytes, a pause (a separate PTY read), then its last byte.
    await client.type(
        session_id, f"printf 'x\\342\\202'; sleep 0.3; printf '\\254y\\n'; {command}\r"
    )
    await client.wait_output(session_id, done)
    assert any(chunk.endswith(b"x\xe2\x82") for chunk in client.chunks[session_id])
    assert "x€y" in client.output[session_id].decode()

    command, done = marker(6)
    many = "\\303\\251\\342\\202\\254\\360\\237\\230\\200"  # é € 😀: 2 + 3 + 4 bytes
    await client.type(session_id, f"printf '{many}%.0s' {{1..20000}}; {command}\r")
    await client.wait_output(session_id, done)
    text = client.output[session_id].decode()  # raises if a character was broken
    assert "é€😀" * 20000 in text


async def test_orphan_grace_expiry_closes_the_session(terminals: Terminals) -> None:
    client = await terminals.connect()
    session_id = await client.create()
    await client.type(session_id, "echo pid=$$\r")
    found = await client.until(lambda: re.search(rb"pid=(\d+)", client.output[session_id]))
    pid = int(found.group(1))
    await client.close()
    [handle] = terminals.timer.pending
    assert handle.delay == terminals.config.orphan_grace_seconds
    assert os.path.exists(f"/proc/{pid}")
    terminals.timer.fire()
    async with asyncio.timeout(TIMEOUT_SECONDS):
        while os.path.exists(f"/proc/{pid}"):
            await asyncio.sleep(0.05)
    watcher = await terminals.connect()
    await watcher.send(type="attach", session_id=session_id, offset=None)
    assert (await watcher.frame("error"))["code"] == "unknown_session"
    assert terminals.store.tabs(WORKSPACE) == []


async def test_detach_orphans_and_a_new_viewer_cancels_the_expiry(terminals: Terminals) -> None:
    client = await terminals.connect()
    session_id = await client.create()
    await client.send(type="detach", request_id="d1", session_id=session_id)
    await client.frame("detached", request_id="d1")
    assert len(terminals.timer.pending) == 1
    await client.attach(session_id, None)
    terminals.timer.fire()  # nothing pending: the attach cancelled it
    await client.type(session_id, "echo still-here\r")
    await client.wait_output(session_id, b"\rstill-here")


async def test_close_escalates_to_sigkill_for_a_shell_that_ignores_hup_and_term(
    terminals: Terminals,
) -> None:
    client = await terminals.connect()
    session_id = await client.create()
    await client.type(session_id, "trap '' HUP TERM; echo trapped; while :; do sleep 0.1; done\r")
    await client.wait_output(session_id, b"\rtrapped")
    started = time.monotonic()
    await client.send(type="close", session_id=session_id)
    exit_frame = await client.frame("exit", session_id=session_id)
    assert time.monotonic() - started >= HUP_WAIT_SECONDS + TERM_WAIT_SECONDS - 0.1
    assert (exit_frame["signal"], exit_frame["reason"]) == (signal.SIGKILL, "closed")
    assert terminals.store.tabs(WORKSPACE) == []


async def test_close_reaches_every_viewer(terminals: Terminals) -> None:
    first = await terminals.connect()
    session_id = await first.create()
    second = await terminals.connect()
    await second.attach(session_id, None)
    bystander = await terminals.connect()  # not watching, but asks for the close
    await bystander.send(type="close", session_id=session_id)
    for client in (first, second, bystander):
        exit_frame = await client.frame("exit", session_id=session_id)
        assert (exit_frame["signal"], exit_frame["reason"]) == (signal.SIGHUP, "closed")


# -- tabs ---------------------------------------------------------------------------------


async def test_tabs_rename_and_close_workspace(terminals: Terminals) -> None:
    first = await terminals.connect()
    one = await first.create(name="one")
    two = await first.create()
    watcher = await terminals.connect()
    await watcher.attach(one, None)
    await watcher.send(type="rename", request_id="n1", session_id=one, name="logs ✓")
    assert (await watcher.frame("renamed", request_id="n1"))["name"] == "logs ✓"
    assert (await first.frame("renamed", session_id=one))["request_id"] is None
    assert [(t["name"], t["live"]) for t in terminals.manager.tabs(WORKSPACE)] == [
        ("logs ✓", True),
        ("Terminal 2", True),
    ]
    await terminals.manager.close_workspace(WORKSPACE)
    for session_id in (one, two):
        exit_frame = await first.frame("exit", session_id=session_id)
        assert exit_frame["reason"] == "workspace_stopped"
    # The tabs stay, not live, so a restarted workspace shows them again.
    await first.send(type="list", request_id="l1")
    sessions = (await first.frame("sessions", request_id="l1"))["sessions"]
    assert [(s["session_id"], s["live"]) for s in sessions] == [(one, False), (two, False)]

    again = await first.create(session_id=one)  # a fresh shell under the old tab
    assert again == one
    recreated = [f for f in first.frames if f["type"] == "created"][-1]["session"]
    assert (recreated["session_id"], recreated["name"]) == (one, "logs ✓")
    assert [t["name"] for t in terminals.store.tabs(WORKSPACE)] == ["logs ✓", "Terminal 2"]
    await first.send(type="close", session_id=two)  # a stale tab: forgotten at once
    assert (await first.frame("exit", session_id=two, reason="closed"))["exit_code"] is None
    assert [t["session_id"] for t in terminals.store.tabs(WORKSPACE)] == [one]


async def test_sessions_are_scoped_to_their_workspace(terminals: Terminals) -> None:
    owner = await terminals.connect()
    session_id = await owner.create()
    other = await terminals.connect("ws-2")
    await other.send(type="attach", session_id=session_id, offset=None)
    assert (await other.frame("error"))["code"] == "unknown_session"
    await other.type(session_id, "echo intruder\r")
    await other.until(lambda: len([f for f in other.frames if f["type"] == "error"]) == 2)
    await other.send(type="list", request_id="l")
    assert (await other.frame("sessions", request_id="l"))["sessions"] == []


async def test_create_in_a_stopped_workspace_is_an_error_frame(terminals: Terminals) -> None:
    client = await terminals.connect(STOPPED_WORKSPACE)
    await client.send(type="create", request_id="c1")
    error = await client.frame("error", request_id="c1")
    assert error["code"] == "workspace_not_running"
    assert "start the workspace" in error["message"]


async def test_a_shell_that_cannot_start_is_an_error_frame(
    start_terminals: StartTerminals,
) -> None:
    terminals = await start_terminals(shell=ShellCommand(["no-such-shell-sam"], SHELL_ENV))
    client = await terminals.connect()
    await client.send(type="create", request_id="c1")
    assert (await client.frame("error", request_id="c1"))["code"] == "spawn_failed"
    assert terminals.store.tabs(WORKSPACE) == []


# -- limits and bad input ---------------------------------------------------------------


async def test_oversize_frames_get_an_error_frame(terminals: Terminals) -> None:
    client = await terminals.connect()
    session_id = await client.create()
    limit = terminals.config.max_frame_bytes
    await client.send(type="input", session_id=session_id, data="x" * (limit + 1))
    await client.ws.send_bytes(p.encode_input(session_id, b"y" * (limit + 1)))
    await client.send(type="input", session_id=session_id, data="é" * (limit // 2 + 1))
    await client.until(lambda: len([f for f in client.frames if f["type"] == "error"]) == 3)
    errors = [f for f in client.frames if f["type"] == "error"]
    assert {e["code"] for e in errors} == {"frame_too_large"}
    await client.type(session_id, "echo still-fine\r")
    await client.wait_output(session_id, b"\rstill-fine")


async def test_frames_over_the_rate_limit_each_get_an_error_frame(
    start_terminals: StartTerminals,
) -> None:
    terminals = await start_terminals({"SAM_MAX_FRAMES_PER_SECOND": "20"})
    client = await terminals.connect()
    for index in range(60):
        await client.send(type="list", request_id=f"l{index}")
    await client.until(lambda: len(client.frames) == 60)
    kinds = [f["type"] for f in client.frames]
    assert kinds == ["sessions"] * 20 + ["error"] * 40  # the burst: one second's worth
    assert all(f["code"] == "rate_limited" for f in client.frames if f["type"] == "error")
    await client.send(type="list", request_id="still")  # no time has passed: no new token
    await client.until(lambda: len(client.frames) == 61)
    assert client.frames[-1]["code"] == "rate_limited"
    terminals.clock.advance(1.0)  # a second later the bucket is full again
    for index in range(20):
        await client.send(type="list", request_id=f"later{index}")
    await client.until(lambda: len(client.frames) == 81)
    assert [f["type"] for f in client.frames[61:]] == ["sessions"] * 20


async def test_the_session_limit_is_an_error_frame(start_terminals: StartTerminals) -> None:
    terminals = await start_terminals({"SAM_MAX_SESSIONS": "2"})
    client = await terminals.connect()
    await client.create()
    await client.create()
    await client.send(type="create", request_id="third")
    error = await client.frame("error", request_id="third")
    assert error["code"] == "too_many_sessions"
    other_workspace = await terminals.connect("ws-2")
    await other_workspace.create()  # the limit is per workspace


async def test_malformed_frames_and_unknown_sessions_get_error_frames(
    terminals: Terminals,
) -> None:
    client = await terminals.connect()
    await client.ws.send_str("not json")
    await client.send(type="explode")
    await client.send(type="resize", session_id="abc", cols="wide", rows=1)
    await client.ws.send_bytes(b"\x07garbage")
    await client.ws.send_bytes(p.encode_input("nosuchsession", b"ls\r"))
    await client.send(type="attach", request_id="a1", session_id="nosuchsession")
    await client.send(type="rename", request_id="n1", session_id="nosuchsession", name="x")
    await client.send(type="close", request_id="c1", session_id="nosuchsession")
    await client.until(lambda: len(client.frames) == 8)
    assert [f["code"] for f in client.frames] == [
        "bad_frame",
        "bad_frame",
        "bad_frame",
        "bad_frame",
        "unknown_session",
        "unknown_session",
        "unknown_session",
        "unknown_session",
    ]
    assert [f["request_id"] for f in client.frames[5:]] == ["a1", "n1", "c1"]
    session_id = await client.create()  # the connection still works
    await client.type(session_id, "echo ok-$((2+2))\r")
    await client.wait_output(session_id, b"ok-4")


async def test_agent_close_ends_sessions_and_closes_websockets(terminals: Terminals) -> None:
    client = await terminals.connect()
    session_id = await client.create()
    await terminals.manager.close()
    exit_frame = await client.frame("exit", session_id=session_id)
    assert exit_frame["reason"] == "agent_stopping"
    await asyncio.wait_for(client._task, TIMEOUT_SECONDS)
    assert client.ws.close_code == aiohttp.WSCloseCode.GOING_AWAY
    assert [t["session_id"] for t in terminals.store.tabs(WORKSPACE)] == [session_id]


# -- through the real agent, and in a container ----------------------------------------

READY_TIMEOUT_SECONDS = 30.0


def _git_repository(path: Path) -> Path:
    path.mkdir()
    git = ["git", "-C", str(path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (path / "README.md").write_text("hello from the repo\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    return path


async def _running_workspace(agent: AgentProcess, repository: Path, workspace_id: str) -> None:
    async with aiohttp.ClientSession(base_url=agent.url, headers=agent.auth()) as http:
        body = {"id": workspace_id, "repository": str(repository)}
        async with http.post("/workspaces", json=body) as created:
            assert created.status == 202, await created.text()
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            while True:
                async with http.get(f"/workspaces/{workspace_id}") as response:
                    state = (await response.json())["state"]
                assert state != "error"
                if state == "running":
                    return
                await asyncio.sleep(0.1)


async def _agent_tabs(agent: AgentProcess, workspace_id: str) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession(base_url=agent.url, headers=agent.auth()) as http,
        http.get(f"/workspaces/{workspace_id}/terminals") as response,
    ):
        assert response.status == 200, await response.text()
        return (await response.json())["tabs"]


async def test_through_the_real_agent_and_its_restart(
    agent: AgentProcess, control_plane: ControlPlaneDouble, tmp_path: Path
) -> None:
    await _running_workspace(agent, _git_repository(tmp_path / "repo"), "ws-real")
    token = control_plane.terminal_token("ws-real")
    async with aiohttp.ClientSession() as http:
        url = f"{agent.ws_url}/workspaces/ws-real/terminal/ws?token={token}"
        client = Client(await http.ws_connect(url))
        first = await client.create(name="editor")
        second = await client.create()
        await client.type(first, "cat README.md; echo term=$TERM\r")
        await client.wait_output(first, b"\rhello from the repo\r\n")
        await client.wait_output(first, b"term=xterm-256color")
        await client.type(second, "exit 3\r")
        assert (await client.frame("exit", session_id=second))["exit_code"] == 3
        third = await client.create()
        tabs = await _agent_tabs(agent, "ws-real")
        assert [(t["session_id"], t["live"]) for t in tabs] == [(first, True), (third, True)]

        agent.kill()  # kill -9: the shells die with the agent's PTYs; the tabs stay
        await client.until(lambda: client.closed)
        agent.restart()
        tabs = await _agent_tabs(agent, "ws-real")
        assert [(t["session_id"], t["name"], t["live"]) for t in tabs] == [
            (first, "editor", False),
            (third, "Terminal 2", False),
        ]
        again = Client(await http.ws_connect(url))
        assert await again.create(session_id=first) == first
        await again.type(first, "echo back-$((1+1))\r")
        await again.wait_output(first, b"back-2")
        await again.ws.close()


def _container_processes(container_id: str) -> str:
    ps = ["docker", "exec", container_id, "ps", "-eo", "pid,args"]
    return subprocess.run(ps, capture_output=True, text=True, check=True).stdout


async def _until_running(container_id: str, args: str) -> None:
    async with asyncio.timeout(TIMEOUT_SECONDS):
        while args not in await asyncio.to_thread(_container_processes, container_id):
            await asyncio.sleep(0.1)


def _in_container(container: str, **fields: Any) -> ShellCommand:
    return ShellCommand(["bash", "-l"], {"TERM": "xterm-256color"}, container=container, **fields)


# Both ways a shell reaches its container (agent/terminals/process.py): through runc, with
# the TTY's master in the agent's hands, and through the Engine's API.
@pytest.fixture(params=["runtime", "engine"])
def exec_env(request: pytest.FixtureRequest) -> dict[str, str]:
    return {"SAM_CONTAINER_EXEC": request.param}


async def test_container_sessions_input_resize_utf8_and_exit(
    start_terminals: StartTerminals, container: str, exec_env: dict[str, str]
) -> None:
    shell = _in_container(container, user="sam", cwd="/tmp")
    terminals = await start_terminals(exec_env, shell=shell)
    client = await terminals.connect()
    session_id = await client.create(cols=90, rows=31)
    await client.type(session_id, 'echo in=$((1+2)); stty size; echo "$(id -un) $PWD $TERM"\r')
    await client.wait_output(session_id, b"in=3\r\n31 90\r\nsam /tmp xterm-256color\r\n")
    await client.send(type="resize", session_id=session_id, cols=100, rows=33)
    await client.frame("resized", session_id=session_id)
    await client.type(session_id, "stty size\r")  # no pause: input waits for the resize
    await client.wait_output(session_id, b"33 100")
    await client.send(type="input", session_id=session_id, data="echo json-$((1+1))\r")
    await client.wait_output(session_id, b"json-2")

    command, done = marker(8)
    # The euro sign's first two bytes, a pause (a separate read), then its last byte.
    await client.type(
        session_id, f"printf 'x\\342\\202'; sleep 0.3; printf '\\254y\\n'; {command}\r"
    )
    await client.wait_output(session_id, done)
    assert any(chunk.endswith(b"x\xe2\x82") for chunk in client.chunks[session_id])
    command, done = marker(9)
    many = "\\303\\251\\342\\202\\254\\360\\237\\230\\200"  # é € 😀
    await client.type(session_id, f"printf '{many}%.0s' {{1..20000}}; {command}\r")
    await client.wait_output(session_id, done)
    text = client.output[session_id].decode()  # raises if a character was broken
    assert "x€y" in text and "é€😀" * 20000 in text

    await client.type(session_id, "exit 3\r")
    exit_frame = await client.frame("exit", session_id=session_id)
    assert (exit_frame["exit_code"], exit_frame["signal"], exit_frame["reason"]) == (
        3,
        None,
        "exited",
    )
    assert client.end[session_id] == len(client.output[session_id])


async def test_container_session_reattach_is_byte_exact(
    start_terminals: StartTerminals, container: str, exec_env: dict[str, str]
) -> None:
    terminals = await start_terminals(exec_env, shell=_in_container(container))
    first = await terminals.connect()
    session_id = await first.create()
    command, done = marker(10)
    await first.type(
        session_id, f"for i in $(seq 1 300); do echo tick-$i; sleep 0.005; done; {command}\r"
    )
    await first.wait_output(session_id, b"tick-40\r\n")
    await first.close()
    seen = bytes(first.output[session_id])
    await eventually(lambda: _offset(terminals, session_id) > len(seen))  # nobody watching

    again = await terminals.connect()
    assert not (await again.attach(session_id, len(seen)))["reset"]
    await again.wait_output(session_id, done)
    continuous = await terminals.connect()
    assert (await continuous.attach(session_id, None))["offset"] == 0
    await continuous.until(lambda: continuous.end[session_id] >= again.end[session_id])
    whole = bytes(continuous.output[session_id])[: again.end[session_id]]
    assert seen + again.output[session_id] == whole
    assert b"tick-300\r\n" in whole
    await again.send(type="close", session_id=session_id)
    await again.frame("exit", session_id=session_id)


async def test_closing_a_container_session_leaves_nothing_in_the_container(
    start_terminals: StartTerminals, container: str, exec_env: dict[str, str]
) -> None:
    terminals = await start_terminals(exec_env, shell=_in_container(container))
    client = await terminals.connect()
    doomed = await client.create()
    await client.type(doomed, "sleep 4343\r")
    stubborn = await client.create()
    await client.type(stubborn, "trap '' HUP TERM; echo trapped; while :; do sleep 0.1; done\r")
    await client.wait_output(stubborn, b"\rtrapped")
    await _until_running(container, "sleep 4343")

    await client.send(type="close", session_id=doomed)
    exit_frame = await client.frame("exit", session_id=doomed)
    assert (exit_frame["signal"], exit_frame["reason"]) == (signal.SIGHUP, "closed")
    assert "sleep 4343" not in _container_processes(container)

    started = time.monotonic()
    await client.send(type="close", session_id=stubborn)
    exit_frame = await client.frame("exit", session_id=stubborn)
    assert time.monotonic() - started >= HUP_WAIT_SECONDS + TERM_WAIT_SECONDS - 0.1
    assert (exit_frame["signal"], exit_frame["reason"]) == (signal.SIGKILL, "closed")
    assert "bash -l" not in _container_processes(container)


async def test_a_container_that_is_gone_is_a_spawn_failed_frame(
    start_terminals: StartTerminals, exec_env: dict[str, str]
) -> None:
    terminals = await start_terminals(exec_env, shell=_in_container("no-such-container-sam"))
    client = await terminals.connect()
    await client.send(type="create", request_id="c1")
    error = await client.frame("error", request_id="c1")
    assert error["code"] == "spawn_failed"
    assert "No such container: no-such-container-sam" in error["message"]
    assert terminals.store.tabs(WORKSPACE) == []
