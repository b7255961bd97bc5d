"""A real node agent (docker backend) whose workspace runs the stand-in ACP agent: the
repository carries stand_in_agent.mjs, and SAM_AGENT_COMMANDS runs it as the agent type
`stand-in` on the container tools' Node, in the workspace's folder. Tests of the agent's
session routes and its chat outbox drive it over HTTP, as the control plane does."""

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from websockets.sync.client import connect

from agent.sessions.tools import NODE
from tests.agent.conftest import BASE_IMAGE
from tests.fixtures.repos import make_repo
from tests.support.agent import AgentProcess
from tests.support.container_tools import require_container_tools
from tests.support.control_plane import ControlPlaneDouble
from tests.support.wait import wait_for

STAND_IN = "stand-in"
SCRIPT = Path(__file__).with_name("stand_in_agent.mjs")
READY_TIMEOUT_SECONDS = 180.0
FRAME_TIMEOUT_SECONDS = 30.0
AGENT_COMMANDS = f'{{"{STAND_IN}": ["{NODE}", "{SCRIPT.name}"]}}'


def start_node(
    agent_factory: Callable[..., AgentProcess],
    control_plane: ControlPlaneDouble,
    tmp_path: Path,
    extra_env: dict[str, str] | None = None,
) -> tuple[AgentProcess, str]:
    """A docker-backed agent with one running workspace of the stand-in's repository."""
    require_container_tools()
    env = {"SAM_BASE_IMAGE": BASE_IMAGE, "SAM_AGENT_COMMANDS": AGENT_COMMANDS}
    agent = agent_factory(backend="docker", extra_env=env | (extra_env or {}))
    repo = make_repo(tmp_path, "stand-in-repo", files={SCRIPT.name: SCRIPT.read_text()})
    workspace_id = f"ws-{uuid.uuid4().hex[:8]}"
    with agent.client() as client:
        answer = client.post("/workspaces", json={"id": workspace_id, "repository": str(repo)})
        assert answer.status_code == 202, answer.text
    control_plane.wait_for("ready", target=workspace_id, timeout=READY_TIMEOUT_SECONDS)
    return agent, workspace_id


def delete_workspace(agent: AgentProcess, workspace_id: str) -> None:
    with agent.client() as client:
        assert client.delete(f"/workspaces/{workspace_id}").status_code == 200, agent.log()[-4000:]


class Sessions:
    """The agent-session routes of one workspace, as the control plane calls them."""

    def __init__(self, agent: AgentProcess, workspace_id: str) -> None:
        self.agent = agent
        self.base = f"/workspaces/{workspace_id}/agent-sessions"
        self.client = agent.client()

    def create(self, **body: Any) -> httpx.Response:
        return self.client.post(self.base, json={"agent": STAND_IN, **body})

    def prompt(self, session_id: str, text: str, prompt_id: str | None = None) -> httpx.Response:
        body = {"text": text} | ({"id": prompt_id} if prompt_id else {})
        return self.client.post(f"{self.base}/{session_id}/prompt", json=body)

    def answer(self, session_id: str, request_id: str, body: Any) -> httpx.Response:
        return self.client.post(f"{self.base}/{session_id}/permissions/{request_id}", json=body)

    def info(self, session_id: str) -> dict[str, Any]:
        answer = self.client.get(f"{self.base}/{session_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def frames(self, session_id: str) -> list[dict[str, Any]]:
        """The session's frames up to its last_seq now, as a viewer that connects receives
        them."""
        last_seq = self.info(session_id)["last_seq"]
        if last_seq == 0:
            return []
        url = f"{self.agent.ws_url}{self.base}/{session_id}/ws?after=0"
        received: list[dict[str, Any]] = []
        with connect(url, additional_headers=self.agent.auth(), max_size=None) as ws:
            while not received or received[-1].get("seq", 0) < last_seq:
                received.append(json.loads(ws.recv(timeout=FRAME_TIMEOUT_SECONDS)))
        return received

    def until(self, session_id: str, what: str, check: Callable[[list[dict]], Any]) -> Any:
        return wait_for(lambda: check(self.frames(session_id)), what, FRAME_TIMEOUT_SECONDS)
