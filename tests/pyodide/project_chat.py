"""What the real-Pyodide project chat tests share: a project row, outbox messages as the node
agent sends them, and a viewer socket's frames, read as a browser would."""

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from tests.fakes.anthropic import ScriptedModel
from tests.pyodide.harness import ClientWebSocket, PyodideWorker
from tests.pyodide.loopback_nodes import AgentDouble, NodeLauncherDouble
from wire.chat import VIEWER_FRAMES

BINDING = "PROJECT_DATA"
WORKSPACE = "w-harness"
SESSION = "as-harness"
NOW = 1_800_000_000.0
REPOSITORY = "https://example.com/chat/repo.git"


@dataclass(frozen=True)
class ChatHost:
    """One development Worker and its doubles, shared by the project chat's modules (one
    host fewer to load; their tests make their own users, projects and ids)."""

    worker: PyodideWorker
    agent: AgentDouble
    launcher: NodeLauncherDouble
    anthropic: ScriptedModel


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(6)


def agent_frame(seq: int, text: str) -> dict[str, Any]:
    update = {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}}
    return {"type": "update", "seq": seq, "update": update}


def outbox(project: str, chat: str, seqs: range, session: str = SESSION) -> list[dict]:
    """OutboxMessage dicts, as the node agent's outbox sends them."""
    created_at = datetime.fromtimestamp(NOW, UTC).isoformat()
    return [
        {
            "id": f"{session}:{seq}",
            "project_id": project,
            "chat_id": chat,
            "frame": agent_frame(seq, f"chunk {seq}"),
            "created_at": created_at,
        }
        for seq in seqs
    ]


def add_project(worker: PyodideWorker, user_id: str) -> str:
    """A project row in D1 (the chat index refers to it), as POST /api/projects makes it."""
    project_id = new_id("p")
    stamp = datetime.fromtimestamp(NOW, UTC).isoformat()
    worker.d1(
        "DATABASE",
        "INSERT INTO projects (id, user_id, name, repository, provider, agent, permission_mode,"
        " created_at, updated_at) VALUES (?, ?, 'repo', ?, 'local', 'claude-code', 'ask', ?, ?)",
        project_id,
        user_id,
        REPOSITORY,
        stamp,
        stamp,
    )
    return project_id


def open_viewer(worker: PyodideWorker, project: str, query: str) -> ClientWebSocket:
    """A viewer socket straight to the object, as the edge forwards one."""
    answer = worker.open_web_socket(
        f"https://project-data/viewer?project={project}&{query}", object=(BINDING, project)
    )
    assert answer.status == 101, answer.body
    assert answer.socket is not None
    return answer.socket


def frames_until_caught_up(viewer: ClientWebSocket) -> tuple[list[dict], int]:
    """The messages a viewer is replayed, and the caught_up frame's last_seq."""
    messages = []
    while True:
        frame = VIEWER_FRAMES.validate_python(viewer.receive_json()).model_dump(mode="json")
        if frame["type"] == "caught_up":
            return messages, frame["last_seq"]
        assert frame["type"] == "message", frame
        messages.append(frame["message"])


def next_messages(viewer: ClientWebSocket, count: int) -> list[dict]:
    """The next `count` message frames (chat frames between them skipped)."""
    messages = []
    while len(messages) < count:
        frame = viewer.receive_json()
        if frame["type"] == "message":
            messages.append(frame["message"])
    return messages


def fill_chat(worker: PyodideWorker, project: str, chat: str, count: int) -> None:
    """`count` more messages in the chat, written by SQL on the object's storage (ingesting
    20,000 under the harness takes minutes; the twin's test ingests them all)."""
    worker.object_sql(
        BINDING,
        project,
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
        "INSERT INTO messages (seq, id, chat_id, role, frame, created_at) "
        "SELECT (SELECT last_seq FROM project) + i, 'filler:' || i, ?, 'assistant', '{}', ? "
        "FROM n",
        count,
        chat,
        NOW,
    )
    worker.object_sql(BINDING, project, "UPDATE project SET last_seq = last_seq + ?", count)
    worker.object_sql(
        BINDING,
        project,
        "UPDATE chats SET message_count = message_count + ?, "
        "last_seq = (SELECT last_seq FROM project) WHERE id = ?",
        count,
        chat,
    )
