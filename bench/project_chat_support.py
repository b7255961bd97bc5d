"""What bench_project_chat.py's parts on the real edge share: the edge with a local node,
a signed-in user whose agent key points at the scripted model, a project in bypass mode,
chats made through the API, and a node's callback token to post to the ingest route as
the node's outbox does.

    with chat_edge(folder) as bench:
        chat = bench.active_chat("say hello")
"""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.agent_workspace import BenchError
from tests.e2e.chat_support import CHAT_READY_SECONDS, ChatUser
from tests.fakes.anthropic import ScriptedModel, Turn, text
from tests.fixtures.repos import make_repo
from tests.support.chat_viewer import ChatViewer, frame_type
from tests.support.edge import Edge, running_edge
from tests.support.wait import bearer
from worker.api.ratelimit import LIMITS

LOGIN = "bench-chat"
INGEST_TIMEOUT_SECONDS = 30.0


@dataclass
class ChatBench:
    edge: Edge
    model: ScriptedModel
    user: ChatUser
    project_id: str
    repository: str  # a path on this machine, or a git URL

    def active_chat(self, message: str, answer: str = "Hello from the agent.") -> dict[str, Any]:
        """A new chat whose run has linked it to a running workspace's agent session, once
        the agent's first turn has ended (a later turn's frames are then its own)."""
        self.model.script(Turn([text(answer)]))
        chat = self.user.new_chat(self.project_id, message)
        self.user.wait_for_status(self.project_id, chat["id"], "active", CHAT_READY_SECONDS)
        asyncio.run(self._first_turn_ended(chat["id"]))
        return self.user.chat(self.project_id, chat["id"])

    async def _first_turn_ended(self, chat_id: str) -> None:
        async with ChatViewer.connect(self.edge, self.user.session, self.project_id, chat_id) as v:
            await v.until(lambda m: frame_type(m) == "turn_ended")

    def node_of(self, chat: dict[str, Any]) -> str:
        return self.user.workspace(chat["workspace_id"])["node_id"]

    def callback_token(self, node_id: str) -> str:
        """The node's callback token, where the local node launcher keeps it for its agent."""
        return (self.edge.data_dir / "nodes" / node_id / "state" / "callback-token").read_text()

    def ingest_client(self, chat: dict[str, Any]) -> httpx.AsyncClient:
        """The ingest route as the chat's node calls it (its callback token)."""
        token = self.callback_token(self.node_of(chat)).strip()
        return httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{self.edge.port}",
            headers={"host": self.edge.host("api"), **bearer(token)},
            timeout=INGEST_TIMEOUT_SECONDS,
        )


async def ingest(
    client: httpx.AsyncClient, chat: dict[str, Any], messages: list[dict[str, Any]]
) -> None:
    """POST one MessageBatch; every message must be new."""
    answer = await client.post(
        f"/api/workspaces/{chat['workspace_id']}/chat-messages", json={"messages": messages}
    )
    counts = answer.json() if answer.status_code == 200 else {}
    if (counts.get("accepted"), counts.get("duplicates"), counts.get("refused", 0)) != (
        len(messages),
        0,
        0,
    ):
        raise BenchError(f"ingest answered {answer.status_code}: {answer.text}")


def chunk_frame(seq: int, words: str) -> dict[str, Any]:
    """An agent_message_chunk as the node's gateway records it (`seq` from 1)."""
    update = {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": words}}
    return {"seq": seq, "type": "update", "update": update}


def outbox_message(chat: dict[str, Any], message_id: str, frame: dict[str, Any]) -> dict[str, Any]:
    """An OutboxMessage of `frame` for the chat, stamped now."""
    return {
        "id": message_id,
        "project_id": chat["project_id"],
        "chat_id": chat["id"],
        "frame": frame,
        "created_at": datetime.now(UTC).isoformat(),
    }


@contextmanager
def chat_edge(folder: Path) -> Iterator[ChatBench]:
    with ScriptedModel() as model:
        rates = {"SAM_RATE_LIMITS": ",".join(f"{name}=100000/60" for name in LIMITS)}
        with running_edge(folder / ".sam", vars=rates) as edge:
            user = ChatUser.sign_in(edge, LOGIN, model)
            repository = make_repo(folder, "bench-chat", files={"README.md": "# bench\n"})
            with bench_on(edge, model, user, str(repository)) as bench:
                yield bench


@contextmanager
def bench_on(
    edge: Edge, model: ScriptedModel, user: ChatUser, repository: str
) -> Iterator[ChatBench]:
    """`user`'s project of `repository` (local node, bypass mode); its workspaces deleted at
    the end."""
    project = user.project(repository, provider="local", permission_mode="bypass")
    try:
        yield ChatBench(edge, model, user, project["id"], repository)
    finally:
        delete_workspaces(user)


def delete_workspaces(user: ChatUser) -> None:
    for workspace in user.ok("GET", "/api/workspaces", 200)["workspaces"]:
        user.delete_workspace(workspace["id"])


def percentiles(samples: list[float]) -> str:
    """`p50 … p99 … (n)` of milliseconds."""
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"p50 {statistics.median(ordered):7.1f} ms   p99 {p99:7.1f} ms   ({len(ordered)} samples)"
    )
