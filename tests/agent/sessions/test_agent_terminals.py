"""ACP terminal/* against the stand-in agent: every command becomes a read-only tab of the
workspace's terminals, watched over the terminal WebSocket protocol (a real aiohttp
server running the node's TerminalManager); its output, exit status and outputByteLimit
reach the agent; a viewer's input, resize, rename and close are refused with `read_only`.
test_in_container.py runs a command the same way in a real container, as its user."""

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from agent.persistence import Store
from agent.sessions.session import AgentSession
from agent.terminals.manager import TerminalManager
from tests.agent.sessions.test_faults import config, no_shell, started, turn
from tests.support.terminal_client import TerminalClient
from tests.support.terminal_server import serve_terminals


@pytest.fixture
async def terminals(store: Store, tmp_path: Path) -> TerminalManager:
    return TerminalManager(config(tmp_path), store, no_shell)


@pytest.fixture
async def terminal_url(terminals: TerminalManager) -> AsyncIterator[str]:
    """The terminal WebSocket of workspace ws-1, served by `terminals`."""
    runner, base = await serve_terminals(terminals)
    yield f"{base}/ws-1"
    await terminals.close()
    await runner.cleanup()


async def said(session: AgentSession, store: Store, text: str) -> Any:
    """What the stand-in said (as JSON) at the end of a turn on `text`."""
    frames = await turn(session, store, text)
    assert frames[-1]["type"] == "turn_ended", frames
    return json.loads(frames[-2]["update"]["content"]["text"])


async def test_a_command_runs_as_a_read_only_tab_and_reports_its_output_and_exit(
    store: Store, tmp_path: Path, terminals: TerminalManager
) -> None:
    session = await started(store, config(tmp_path), tmp_path, terminals=terminals)
    answer = await said(session, store, "run echo hello from the agent; exit 3")
    assert answer["exit"] == {"exitCode": 3}
    output = answer["output"]
    assert "hello from the agent" in output["output"] and output["truncated"] is False
    assert output["exitStatus"] == {"exitCode": 3}
    assert answer["afterRelease"]["code"] == -32602  # released: the id is gone
    [tab] = terminals.tabs("ws-1")
    assert (tab["read_only"], tab["owner"], tab["name"], tab["live"]) == (
        True,
        "as-1",
        "echo hello from the agent; exit 3",
        False,  # it ended; listed until the agent session ends
    )
    killed = await said(session, store, "run kill -TERM $$")
    assert killed["exit"] == {"signal": "SIGTERM"}
    await session.stop("requested")
    assert terminals.tabs("ws-1") == []


async def test_output_byte_limit_keeps_the_end_at_a_character_boundary(
    store: Store, tmp_path: Path, terminals: TerminalManager
) -> None:
    session = await started(store, config(tmp_path), tmp_path, terminals=terminals)
    # 'a' then eight 2-byte characters: the last 9 bytes start inside a character
    answer = await said(session, store, "run -limit 9 printf 'aéééééééé'")
    assert answer["output"]["output"] == "éééé" and answer["output"]["truncated"] is True
    whole = await said(session, store, "run -limit 100 printf 'aéééééééé'")
    assert whole["output"]["output"] == "aéééééééé" and whole["output"]["truncated"] is False
    await session.stop("requested")


async def test_viewers_watch_the_command_live_and_may_not_drive_it(
    store: Store, tmp_path: Path, terminals: TerminalManager, terminal_url: str
) -> None:
    session = await started(store, config(tmp_path), tmp_path, terminals=terminals)
    created = await said(session, store, "start echo started; read line; echo never")
    assert created["result"]["terminalId"].startswith("term-")
    async with TerminalClient.connect(terminal_url) as viewer:
        listed = await viewer.request("list")
        [tab] = listed["sessions"]
        assert (tab["read_only"], tab["owner"], tab["live"]) == (True, "as-1", True)
        tab_id = tab["session_id"]
        await viewer.attach(tab_id, None)
        await viewer.wait_for(tab_id, b"started")

        refusals = [
            await viewer.request("input", session_id=tab_id, data="typed\r"),
            await viewer.request("resize", session_id=tab_id, cols=100, rows=30),
            await viewer.request("rename", session_id=tab_id, name="mine"),
            await viewer.request("close", session_id=tab_id),
        ]
        assert {(r["type"], r["code"]) for r in refusals} == {("error", "read_only")}
        assert "agent session as-1" in refusals[0]["message"]
        await viewer.type(tab_id, b"typed as binary\r")
        await viewer.until(lambda: len([f for f in viewer.frames if f.get("code")]) == 5)
        assert b"never" not in viewer.output[tab_id]  # no input reached `read`

        # The agent session ends: its commands are killed, the viewer sees the exit.
        await session.stop("requested")
        exit_frame = await viewer.until(
            lambda: next((f for f in viewer.frames if f["type"] == "exit"), None)
        )
        assert (exit_frame["session_id"], exit_frame["reason"]) == (tab_id, "killed")
        assert (await viewer.request("list"))["sessions"] == []
