"""What bench_agent_session.py's parts share: a workspace on a real node agent, a viewer
WebSocket that checks every frame, and the run's failure (a failed request or a wrong
answer ends the run; nothing here looks at time but to stamp what arrives)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from agent.sessions.container import ContainerUser
from agent.workspaces.containers import LABEL_NODE
from tests.support.agent import AgentProcess
from tests.support.control_plane import ControlPlaneDouble

READY_TIMEOUT_SECONDS = 180.0
FRAME_TIMEOUT_SECONDS = 120.0


class BenchFailure(Exception):
    """A request failed or an answer was not the expected one: the run fails."""


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise BenchFailure(what)


# --- a workspace on a node agent -----------------------------------------------------------


@dataclass(frozen=True)
class Workspace:
    id: str
    target: ContainerUser

    @property
    def base(self) -> str:
        return f"/workspaces/{self.id}/agent-sessions"


def bring_up(agent: AgentProcess, control_plane: ControlPlaneDouble, repo: Path) -> Workspace:
    workspace_id = f"ws-{uuid.uuid4().hex[:8]}"
    with agent.client() as client:
        answer = client.post("/workspaces", json={"id": workspace_id, "repository": str(repo)})
        expect(answer.status_code == 202, f"POST /workspaces: {answer.status_code} {answer.text}")
        outcome = control_plane.wait_for(
            target=workspace_id,
            where=lambda c: c.kind in ("ready", "provisioning-failed"),
            timeout=READY_TIMEOUT_SECONDS,
        )[0]
        expect(outcome.kind == "ready", f"workspace {workspace_id}: {outcome.body}")
        record = client.get(f"/workspaces/{workspace_id}").json()
    target = ContainerUser(
        record["container_id"], record["remote_user"], record["remote_folder"],
        record.get("remote_env") or {},
    )  # fmt: skip
    return Workspace(workspace_id, target)


def in_container(workspace: Workspace, *argv: str) -> str:
    done = subprocess.run(
        ["docker", "exec", workspace.target.container, *argv], capture_output=True, text=True
    )
    return done.stdout


class Viewer:
    """A viewer WebSocket; frames timestamped on arrival, seq checked to be contiguous."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.last_seq = 0

    async def next(self) -> tuple[float, dict[str, Any]]:
        message = await asyncio.wait_for(self.ws.receive(), FRAME_TIMEOUT_SECONDS)
        at = time.perf_counter()
        expect(message.type == aiohttp.WSMsgType.TEXT, f"viewer got {message!r}")
        frame = json.loads(message.data)
        expect(frame.get("seq") == self.last_seq + 1, f"frame out of order: {frame}")
        expect(frame["type"] not in ("agent_error", "crashed", "stopped"), f"viewer: {frame}")
        self.last_seq = frame["seq"]
        return at, frame

    async def until(self, kind: str) -> dict[str, Any]:
        while (frame := (await self.next())[1])["type"] != kind:
            pass
        return frame


async def checked(response: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    body = await response.text()
    expect(response.status == status, f"{response.method} {response.url}: {response.status} {body}")
    return json.loads(body)


def chunk_text(update: dict[str, Any]) -> str | None:
    """The text of an agent_message_chunk update (None for any other update)."""
    if update.get("sessionUpdate") != "agent_message_chunk":
        return None
    return update["content"].get("text", "")


def remove_leftovers(node_ids: list[str], volume: str) -> None:
    """What this run made and did not remove (after a failure): by its nodes' labels."""
    for node_id in node_ids:
        label = f"--filter=label={LABEL_NODE}={node_id}"
        for kind in ("container", "network"):
            flags = "-aq" if kind == "container" else "-q"
            ls = subprocess.run(
                ["docker", kind, "ls", flags, label], capture_output=True, text=True
            )
            listed = ls.stdout.split()
            if listed:
                rm = ["docker", kind, "rm", *(["-f", "-v"] if kind == "container" else []), *listed]
                subprocess.run(rm, capture_output=True)
    subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True)


def delete(agent: AgentProcess, workspace: Workspace) -> None:
    with agent.client() as client:
        answer = client.delete(f"/workspaces/{workspace.id}")
    expect(answer.status_code == 200, f"DELETE {workspace.id}: {answer.text}")
