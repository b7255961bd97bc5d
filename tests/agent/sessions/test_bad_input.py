"""Bad input to a real node agent's agent-session routes (host backend: no container, so
no adapter; the stored session is written into its state directory while it is stopped):
the body limit admits the largest valid prompt however it is encoded and refuses one
character more; an unknown session id, another workspace's token and a flooding viewer get
clear errors, while the agent keeps serving a terminal; a session that claimed to run when
the agent stopped is not left claiming to run after it starts again."""

import asyncio
import json
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from agent.persistence import Store
from tests.agent.test_server import create_running, repository  # noqa: F401 - a fixture
from tests.support.agent import AgentProcess
from tests.support.control_plane import ControlPlaneDouble
from tests.support.terminal_client import TerminalClient
from wire import agent_session as w

SESSIONS = "/workspaces/ws-1/agent-sessions"
STORED = "as-0123456789abcdef"
FLOOD_FRAMES = 1000


def body_of(text: str) -> bytes:
    """A prompt's JSON as the most verbose encoder writes it (every character escaped)."""
    return json.dumps({"text": text}, ensure_ascii=True).encode()


def assert_error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["error"] == code and body["message"]
    return body


@pytest.fixture
def agent_with_a_stored_session(agent: AgentProcess, repository: Path) -> AgentProcess:  # noqa: F811
    """ws-1 running; STORED in its store, `idle` with two frames, as an agent that was
    stopped in the middle of the session would have left it."""
    create_running(agent, repository)
    agent.stop()
    store = Store(agent.state_dir / "agent.sqlite3")
    try:
        store.add_agent_session(STORED, "ws-1", "claude-code", "ask", "idle")
        for frame in (
            w.PromptFrame(type="prompt", seq=1, text="hello"),
            w.TurnEndedFrame(type="turn_ended", seq=2, stop_reason="end_turn"),
        ):
            store.append_frame(STORED, lambda seq, f=frame: f.model_dump_json(), 1 << 20)
    finally:
        store.close()
    return agent.start()


def test_one_body_limit_admits_the_largest_prompt_and_refuses_more(agent: AgentProcess) -> None:
    largest = "\U0001f600" * w.MAX_PROMPT_CHARS  # 12 bytes each, escaped as a surrogate pair
    assert len(body_of(largest)) <= w.MAX_BODY_BYTES
    with agent.client() as client:
        for path in (f"{SESSIONS}/{STORED}/prompt", SESSIONS):
            field = "text" if path.endswith("prompt") else "prompt"
            body = json.dumps({field: largest}, ensure_ascii=True)
            admitted = client.post(path, content=body, headers={"content-type": "application/json"})
            # parsed and valid: refused only for what it names (no workspace ws-1 here)
            assert_error(admitted, 404, "workspace_not_found")
            over = json.dumps({field: "x" * (w.MAX_PROMPT_CHARS + 1)})
            refused = client.post(path, content=over, headers={"content-type": "application/json"})
            message = assert_error(refused, 400, "bad_request")["message"]
            assert field in message and str(w.MAX_PROMPT_CHARS) in message
        huge = client.post(f"{SESSIONS}/{STORED}/prompt", content=b"x" * (w.MAX_BODY_BYTES + 1))
        message = assert_error(huge, 413, "payload_too_large")["message"]
        assert str(w.MAX_BODY_BYTES) in message


def test_a_session_that_claimed_to_run_is_marked_stopped(
    agent_with_a_stored_session: AgentProcess,
) -> None:
    """Its workspace has no container (host backend): it cannot be resumed."""
    with agent_with_a_stored_session.client() as client:
        info = client.get(f"{SESSIONS}/{STORED}").json()
        assert (info["state"], info["last_seq"]) == ("stopped", 3)
        assert_error(
            client.post(f"{SESSIONS}/{STORED}/prompt", json={"text": "hi"}),
            404,
            "agent_session_not_found",
        )


async def test_bad_viewers_get_clear_errors_and_terminals_keep_working(
    agent_with_a_stored_session: AgentProcess, control_plane: ControlPlaneDouble
) -> None:
    agent = agent_with_a_stored_session
    with agent.client() as client:
        assert_error(client.get(f"{SESSIONS}/as-unknown"), 404, "agent_session_not_found")
        assert_error(client.get(f"{SESSIONS}/as-unknown/ws"), 404, "agent_session_not_found")
        assert_error(client.post(f"{SESSIONS}/as-unknown/cancel"), 404, "agent_session_not_found")
        assert_error(client.get(f"{SESSIONS}/{STORED}/ws?after=x"), 400, "bad_request")
    viewer_url = f"{agent.ws_url}{SESSIONS}/{STORED}/ws"
    async with aiohttp.ClientSession() as http:
        other = {"Authorization": f"Bearer {control_plane.terminal_token('ws-other')}"}
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(viewer_url, headers=other)
        assert refused.value.status == 403

        mine = {"Authorization": f"Bearer {control_plane.terminal_token('ws-1')}"}
        async with http.ws_connect(f"{viewer_url}?after=1", headers=mine) as viewer:
            replayed = [json.loads((await viewer.receive()).data) for _ in range(2)]
            assert [f["seq"] for f in replayed] == [2, 3]
            assert replayed[1] == {"seq": 3, "type": "stopped", "reason": "workspace_stopped"}
            # The flood: as fast as it can, bad frames and answers to nothing.
            bad = json.dumps({"type": "answer_permission", "request_id": "p", "option_id": "o"})
            flood = [bad if n % 2 else "not json" for n in range(FLOOD_FRAMES)]
            sender = asyncio.create_task(send_all(viewer, flood))
            terminal_url = f"{agent.url}/workspaces/ws-1/terminal/ws"
            token = control_plane.terminal_token("ws-1")
            async with TerminalClient.connect(terminal_url, token=token) as terminal:
                session_id = await terminal.create()
                await terminal.run(session_id, "echo $((6*7))")
                await terminal.wait_for_line(session_id, b"42")
            await sender
            codes = await error_codes(viewer, FLOOD_FRAMES)
    assert set(codes) <= {"bad_frame", "unknown_request", "rate_limited"}
    assert "rate_limited" in codes and "bad_frame" in codes  # over 200 a second: some ignored
    with agent.client() as client:
        assert client.get("/health").status_code == 200


async def send_all(ws: aiohttp.ClientWebSocketResponse, frames: list[str]) -> None:
    for frame in frames:
        await ws.send_str(frame)


async def error_codes(ws: aiohttp.ClientWebSocketResponse, count: int) -> list[str]:
    """The codes of the next `count` error frames (one per flooding frame)."""
    codes = []
    while len(codes) < count:
        message = await asyncio.wait_for(ws.receive(), 30)
        frame = json.loads(message.data)
        assert frame["type"] == "error" and frame["message"], frame
        codes.append(frame["code"])
    return codes
