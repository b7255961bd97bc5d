"""The heartbeat says how recently each workspace was used: the real agent, its terminal
socket, an agent session in a real container, and the control-plane double that records
the beats.

Terminal input makes a workspace's `idle_seconds` start again from zero; an open terminal
socket is a viewer; once the socket closes the workspace has none and its idle time grows.
An agent session prompting is busy at every beat, silent or not, until it is stopped.
"""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from websockets.sync.client import connect

from tests.agent.conftest import AgentFactory
from tests.agent.sessions.stand_in_node import Sessions, delete_workspace, start_node
from tests.fixtures.repos import make_repo
from tests.support.agent import AgentProcess
from tests.support.control_plane import Callback, ControlPlaneDouble
from wire.callbacks import Heartbeat

WORKSPACE = "ws-activity"
READY_TIMEOUT_SECONDS = 120.0


def reported(workspace_id: str, check: Callable[[dict[str, Any]], bool]) -> Callable:
    def where(call: Callback) -> bool:
        entries = [e for e in call.body.get("workspaces", []) if e["id"] == workspace_id]
        return bool(entries) and check(entries[0])

    return where


def entry_of(call: Callback, workspace_id: str) -> dict[str, Any]:
    [entry] = [e for e in call.body["workspaces"] if e["id"] == workspace_id]
    return entry


async def test_terminal_input_and_viewers_reach_the_heartbeat(
    agent: AgentProcess, control_plane: ControlPlaneDouble, tmp_path: Path
) -> None:
    repo = make_repo(tmp_path, "activity")
    with agent.client() as client:
        made = client.post("/workspaces", json={"id": WORKSPACE, "repository": str(repo)})
        assert made.status_code == 202, made.text
    await control_plane.wait_for_async("ready", target=WORKSPACE, timeout=READY_TIMEOUT_SECONDS)
    # Running, never used since the agent started: reported, with no idle time to count from.
    first = (await control_plane.wait_for_async("heartbeat", where=reported(WORKSPACE, bool)))[-1]
    assert entry_of(first, WORKSPACE) == {
        "id": WORKSPACE,
        "idle_seconds": None,
        "agent_busy": False,
        "viewers": 0,
    }

    token = control_plane.terminal_token(WORKSPACE)
    url = f"{agent.ws_url}/workspaces/{WORKSPACE}/terminal/ws?token={token}"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        await ws.send_json({"type": "create", "request_id": "c1", "name": "tab"})
        while True:
            frame = await ws.receive()
            if frame.type is aiohttp.WSMsgType.TEXT and json.loads(frame.data)["type"] == "created":
                session_id = json.loads(frame.data)["session"]["session_id"]
                break
        await ws.send_json({"type": "input", "session_id": session_id, "data": "echo hi\n"})
        # Input counted, the open socket a viewer.
        await control_plane.wait_for_async(
            "heartbeat",
            where=reported(
                WORKSPACE, lambda e: e["idle_seconds"] is not None and e["viewers"] == 1
            ),
        )
    # Closed: no viewer; the idle time counts on from that input.
    *_, gone = await control_plane.wait_for_async(
        "heartbeat",
        where=reported(WORKSPACE, lambda e: e["viewers"] == 0 and e["idle_seconds"] is not None),
    )
    assert entry_of(gone, WORKSPACE)["agent_busy"] is False
    *_, later = await control_plane.wait_for_async(
        "heartbeat",
        where=reported(
            WORKSPACE,
            lambda e: (
                e["idle_seconds"] is not None
                and e["idle_seconds"] > entry_of(gone, WORKSPACE)["idle_seconds"]
            ),
        ),
    )
    assert entry_of(later, WORKSPACE)["viewers"] == 0
    # What the agent sent is what the control plane parses.
    assert Heartbeat.model_validate(later.body).workspaces[0].id == WORKSPACE
    with agent.client() as client:
        assert client.delete(f"/workspaces/{WORKSPACE}").status_code == 200


def test_a_prompting_agent_is_busy_even_when_silent(
    agent_factory: AgentFactory, control_plane: ControlPlaneDouble, tmp_path: Path
) -> None:
    """The stand-in ACP agent in a real workspace container, told to never end its turn:
    silent, yet every beat says the workspace is busy until the session is stopped."""
    agent, workspace_id = start_node(agent_factory, control_plane, tmp_path)
    sessions = Sessions(agent, workspace_id)
    try:
        made = sessions.create(id="as-busy", prompt="hang", prompt_id="p-1")
        assert made.status_code == 201, made.text
        sessions.until(
            "as-busy", "the prompt taken", lambda f: any(x["type"] == "prompt" for x in f)
        )
        seen = len(control_plane.heartbeats())
        # Several beats later, with no frame in between, it is still busy.
        control_plane.wait_for("heartbeat", count=seen + 3)
        busy = [
            entry_of(call, workspace_id)["agent_busy"] for call in control_plane.heartbeats()[seen:]
        ]
        assert busy and all(busy), busy
        assert sessions.info("as-busy")["state"] == "prompting"
        # A viewer of the session counts as one.
        url = f"{agent.ws_url}{sessions.base}/as-busy/ws?after=0"
        with connect(url, additional_headers=agent.auth()):
            control_plane.wait_for(
                "heartbeat", where=reported(workspace_id, lambda e: e["viewers"] == 1)
            )
        closed = {id(call) for call in control_plane.heartbeats()}
        control_plane.wait_for(
            "heartbeat",
            where=lambda call: (
                id(call) not in closed
                and reported(workspace_id, lambda e: e["viewers"] == 0 and e["agent_busy"])(call)
            ),
        )
        stopped = sessions.client.post(f"{sessions.base}/as-busy/stop")
        assert stopped.status_code == 200, stopped.text
        control_plane.wait_for(
            "heartbeat", where=reported(workspace_id, lambda e: e["agent_busy"] is False)
        )
    finally:
        sessions.client.close()
        delete_workspace(agent, workspace_id)
