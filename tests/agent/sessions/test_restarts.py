"""An adapter that exits by itself is started again, against the stand-in ACP agent: killed
mid-turn, the session resumes with session/load (or a new ACP session that says the
context was lost) and the next prompt is answered; an adapter that keeps failing stops
after the restart bound with a final crashed frame. Sequence numbers never repeat or skip,
and a live viewer receives every frame."""

import asyncio
import json
from pathlib import Path

from agent.persistence import Store
from agent.sessions.session import AgentSession, Viewer
from agent.terminals.manager import TerminalManager
from tests.agent.sessions.test_faults import (
    STAND_IN,
    LocalLauncher,
    config,
    frames,
    no_shell,
    started,
    turn,
    until,
)
from wire import agent_session as w

FAST = {"SAM_AGENT_RESTART_BACKOFF_SECONDS": "0"}


def drain(viewer: Viewer) -> list[int | None]:
    """The seqs a live viewer has been handed (None: the end of the session)."""
    seqs: list[int | None] = []
    while not viewer.empty():
        item = viewer.get_nowait()
        seqs.append(None if item is None else item[0])
    return seqs


def assert_contiguous(store: Store) -> None:
    seqs = [f["seq"] for f in frames(store)]
    assert seqs == list(range(1, len(seqs) + 1))


async def test_killed_mid_turn_it_restarts_reloads_and_answers_the_next_prompt(
    store: Store, tmp_path: Path
) -> None:
    launcher = LocalLauncher()
    session = await started(store, config(tmp_path, **FAST), tmp_path, launcher=launcher)
    first_acp_id = session.acp_session_id
    viewer = session.subscribe()
    session.prompt("hang")
    await until(store, "prompt")
    launcher.processes[-1].kill()  # kill -9 of the adapter mid-turn
    resumed = await until(store, "resumed")
    kinds = [(f["type"], f.get("restarting"), f.get("cause")) for f in frames(store)]
    assert kinds[-4:] == [
        ("prompt", None, None),
        ("crashed", True, None),
        ("restarting", None, "crashed"),
        ("resumed", None, None),
    ]
    crashed = next(f for f in frames(store) if f["type"] == "crashed")
    assert crashed["exit_code"] == -9 and "restarted" in crashed["hint"]
    restarting = next(f for f in frames(store) if f["type"] == "restarting")
    assert (restarting["attempt"], restarting["limit"], restarting["delay_seconds"]) == (1, 3, 0)
    # session/load of the same ACP session; the update it replayed is not a new frame
    assert resumed == {
        "seq": resumed["seq"],
        "type": "resumed",
        "acp_session_id": first_acp_id,
        "context": "loaded",
    }
    assert "replayed from before" not in json.dumps(frames(store))
    assert session.state == w.SessionState.IDLE
    assert store.agent_session("as-1")["state"] == "idle"

    answered = await turn(session, store, "still there?")
    assert [f["type"] for f in answered] == ["prompt", "update", "turn_ended"]
    assert answered[1]["update"]["content"]["text"] == "still there?"
    assert_contiguous(store)
    assert drain(viewer) == [f["seq"] for f in frames(store)][1:]  # subscribed after started
    await session.stop("requested")


async def test_an_adapter_without_session_load_resumes_with_its_context_lost(
    store: Store, tmp_path: Path
) -> None:
    launcher = LocalLauncher()
    env = {"STAND_IN_NO_LOAD": "1"}
    session = await started(store, config(tmp_path, **FAST), tmp_path, env, launcher)
    first_acp_id = session.acp_session_id
    launcher.processes[-1].kill()
    resumed = await until(store, "resumed")
    assert resumed["context"] == "lost" and resumed["acp_session_id"] != first_acp_id
    assert store.agent_session("as-1")["acp_session_id"] == resumed["acp_session_id"]
    answered = await turn(session, store, "hello again")
    assert answered[-1]["type"] == "turn_ended"
    assert_contiguous(store)
    await session.stop("requested")


async def test_a_crash_loop_stops_after_the_bound_with_a_final_crashed_frame(
    store: Store, tmp_path: Path
) -> None:
    starts = tmp_path / "starts"  # the stand-in refuses every start after the first
    cfg = config(tmp_path, SAM_AGENT_RESTARTS="2", **FAST)
    session = await started(store, cfg, tmp_path, {"STAND_IN_STARTS": str(starts)})
    viewer = session.subscribe()
    await turn(session, store, "crash")
    for _ in range(400):
        if session.state == w.SessionState.CRASHED:
            break
        await asyncio.sleep(0.025)
    after_prompt = frames(store)[2:]  # started, prompt
    summary = [(f["type"], f.get("restarting"), f.get("attempt")) for f in after_prompt]
    assert summary == [
        ("crashed", True, None),  # the prompt's crash (exit 3)
        ("restarting", None, 1),
        ("crashed", True, None),  # the stand-in refuses to start again (exit 5)
        ("restarting", None, 2),
        ("crashed", False, None),  # the bound: 2 restarts within the window
    ]
    final = after_prompt[-1]
    assert final["exit_code"] == 5 and "refuses to start again" in final["stderr_tail"]
    assert "restarted 2 times" in final["hint"] and "start a new session" in final["hint"]
    assert store.agent_session("as-1")["state"] == "crashed"
    assert starts.read_text().count("start") == 3  # the first start and 2 restarts
    assert drain(viewer)[-1] is None  # the live viewer was told the session ended
    assert_contiguous(store)


async def test_a_session_of_an_agent_that_restarted_is_resumed(
    store: Store, tmp_path: Path
) -> None:
    """What the node agent does at start for a stored session that claimed to run
    (AgentSessionManager.resume_all): what is left of the old adapter is killed, a new one
    reloads the ACP session, and the frames continue after the stored ones."""
    cfg = config(tmp_path, **FAST)
    store.add_agent_session("as-1", "ws-1", "claude-code", "ask", "prompting")
    store.update_agent_session("as-1", acp_session_id="stand-in-before")
    prompt = w.PromptFrame(type="prompt", seq=1, text="before the restart")
    store.append_frame("as-1", lambda seq: prompt.model_dump_json(), cfg.session_log_bytes)
    launcher = LocalLauncher()  # the same container, where the old adapter still runs
    leftover = await launcher.start(STAND_IN, {}, limit=1024 * 1024)
    record = store.agent_session("as-1")
    session = AgentSession(
        record, store, cfg, launcher, str(tmp_path), TerminalManager(cfg, store, no_shell)
    )
    session.resume(STAND_IN, {})
    assert store.agent_session("as-1")["state"] == "restarting"  # no longer claims to run
    resumed = await until(store, "resumed")
    assert await asyncio.wait_for(leftover.wait(), 10) == -9
    restarting = frames(store)[1]
    assert (restarting["type"], restarting["cause"]) == ("restarting", "agent_restarted")
    assert (resumed["context"], resumed["acp_session_id"]) == ("loaded", "stand-in-before")
    answered = await turn(session, store, "after the restart")
    assert answered[-1]["type"] == "turn_ended"
    assert_contiguous(store)
    await session.stop("requested")


async def test_a_graceful_agent_shutdown_suspends_the_session_for_the_next_start(
    store: Store, tmp_path: Path
) -> None:
    """AgentSessionManager.close (SIGTERM to the node agent) suspends its sessions: the
    adapter stops, nothing says the session ended, and the next start resumes it."""
    cfg = config(tmp_path, **FAST)
    launcher = LocalLauncher()
    session = await started(store, cfg, tmp_path, launcher=launcher)
    viewer = session.subscribe()
    session.prompt("hang")
    await until(store, "prompt")
    stored = frames(store)
    await session.suspend()
    assert launcher.processes[-1].returncode is not None  # the adapter is gone
    assert frames(store) == stored  # no stopped or crashed frame
    assert store.agent_session("as-1")["state"] == "prompting"  # still claims to run...
    assert drain(viewer)[-1] is None  # ...and its viewers were let go
    terminals = TerminalManager(cfg, store, no_shell)
    again = AgentSession(store.agent_session("as-1"), store, cfg, launcher, "/", terminals)
    again.resume(STAND_IN, {})  # ...until the next start resumes it
    resumed = await until(store, "resumed", after=len(stored))
    assert resumed["context"] == "loaded"
    assert (await turn(again, store, "next"))[-1]["type"] == "turn_ended"
    assert_contiguous(store)
    await again.stop("requested")
