"""Shared by the ProjectData tests: a user's project row, outbox messages, a viewer."""

import json
import secrets
from datetime import UTC, datetime
from typing import Any

from tests.support.wait import eventually
from worker.deployment import Deployment
from worker.projects import store
from worker.projects.model import new_project_id

FRAME_TIMEOUT_SECONDS = 10.0


async def add_project(deployment: Deployment, user_id: str) -> str:
    project = await store.insert(
        deployment,
        id=new_project_id(),
        user_id=user_id,
        name="repo",
        repository="https://example.com/a/repo.git",
        default_branch=None,
        provider="local",
        node_size=None,
        agent="claude-code",
        permission_mode="ask",
    )
    return project.id


def agent_frame(seq: int, text: str = "hello") -> dict[str, Any]:
    """An agent session's update frame, as the gateway's viewers see it."""
    return {
        "type": "update",
        "seq": seq,
        "update": {
            "sessionUpdate": "agent_message_chunk",
            "content": {"type": "text", "text": text},
        },
    }


def outbox(
    project_id: str, chat_id: str, session: str, seqs: range, text: str = "hi"
) -> list[dict]:
    """OutboxMessage dicts (as the node agent sends them) of the session's frames `seqs`."""
    return [
        {
            "id": f"{session}:{seq}",
            "project_id": project_id,
            "chat_id": chat_id,
            "frame": agent_frame(seq, f"{text} {seq}"),
            "created_at": datetime.now(UTC).isoformat(),
        }
        for seq in seqs
    ]


def new_chat_id() -> str:
    return "c" + secrets.token_hex(8)


class Viewer:
    """One end of a viewer socket, in this process: every frame it receives, parsed."""

    def __init__(self, socket: Any) -> None:
        self.socket = socket
        self.frames: list[dict] = []
        self.closed: tuple[int, str] | None = None
        socket.addEventListener("message", lambda event: self.frames.append(json.loads(event.data)))
        socket.addEventListener("close", self._on_close)
        socket.accept()

    def _on_close(self, event: Any) -> None:
        self.closed = (event.code, event.reason)

    @classmethod
    async def open(cls, env: Any, project_id: str, query: str) -> "Viewer":
        response = await env.PROJECT_DATA.getByName(project_id).fetch(
            f"https://project-data/viewer?project={project_id}&{query}",
            headers={"upgrade": "websocket"},
        )
        assert response.status == 101, await response.text()
        return cls(response.web_socket)

    def messages(self) -> list[dict]:
        return [f["message"] for f in self.frames if f["type"] == "message"]

    def seqs(self) -> list[int]:
        return [message["seq"] for message in self.messages()]

    async def until(self, what: str, check: Any) -> Any:
        return await eventually(lambda: check(self), what, FRAME_TIMEOUT_SECONDS)

    async def caught_up(self) -> dict:
        return await self.until(
            "caught_up", lambda v: next((f for f in v.frames if f["type"] == "caught_up"), None)
        )

    async def has_messages(self, count: int) -> list[dict]:
        return await self.until(
            f"{count} messages", lambda v: v.messages() if len(v.messages()) >= count else None
        )
