"""A project chat end to end: the real local edge, a local node agent (Docker backend), a
real workspace container, the real Claude Code adapter (claude-agent-acp from the tools
mount) talking through the node's model proxy to the scripted Messages API, stored as the
user's own gateway. Nothing between them is a double of our own code.

1. The walk: New chat with a first message → the run finds a node and brings the workspace
   up → the answer streams into the project chat's viewer → the agent asks to write a file
   and the question is answered from the project chat (POST …/permissions) → a follow-up →
   the workspace is deleted and the chat says so → its history, read back page by page and
   by a viewer from seq 0, is message by message what the live viewer saw → a follow-up
   starts a fresh run on a new workspace, whose first prompt carries the conversation.
2. The outbox: the control plane stops mid-turn; the agent finishes the turn while it is
   down; once it is back, the turn's messages arrive, in order, each once. This one runs on
   the loopback Hetzner (whose VM agents outlive the edge, as a cloud node does): a local
   node's agent stops with the edge.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.chat_support import (
    CHAT_READY_SECONDS,
    CHAT_STOPPED_SECONDS,
    WARM_TIMEOUT_SECONDS,
    ChatUser,
    agent_frames_in_chat,
    option,
    shown_in_chat,
)
from tests.e2e.test_core_loop import edge_vars
from tests.fakes.anthropic import ScriptedModel, Turn, text, tool_use
from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.github import FakeGitHub
from tests.fakes.hetzner import FakeHetzner
from tests.fixtures.repos import make_repo
from tests.support.artifact import upload_agent
from tests.support.chat_viewer import ChatViewer, Message, agent_text, frame_type
from tests.support.container_tools import model_for_the_adapter
from tests.support.edge import running_edge
from tests.support.wait import wait_for

pytestmark = pytest.mark.timeout(900)

OUTBOX_RETRY_SECONDS = 120.0  # the agent's first failed send, seen in its log


@pytest.fixture
def model() -> Any:
    with model_for_the_adapter() as scripted:
        yield scripted


def in_container(workspace: dict[str, Any], *argv: str) -> str:
    done = subprocess.run(
        ["docker", "exec", workspace["container_id"], *argv], capture_output=True, text=True
    )
    return done.stdout


def is_frame(kind: str, **fields: Any) -> Any:
    return lambda m: (
        frame_type(m) == kind and all(m["frame"].get(k) == v for k, v in fields.items())
    )


def conversation_of(request: dict[str, Any]) -> str:
    """All the text a model request carries (system prompt and messages)."""
    return json.dumps({"system": request.get("system"), "messages": request["messages"]})


# --- 1. the walk ------------------------------------------------------------------------------


def test_a_project_chat_outlives_its_workspace(
    tmp_path: Path, model: ScriptedModel, e2e_nodes: set[str]
) -> None:
    repo = make_repo(tmp_path, "chat-demo", files={"README.md": "# chat demo\n"})
    warm = {"SAM_WARM_TIMEOUT_SECONDS": str(WARM_TIMEOUT_SECONDS)}
    with running_edge(tmp_path / ".sam", vars=warm) as edge:
        user = ChatUser.sign_in(edge, "alice", model)
        project = user.project(str(repo), provider="local", permission_mode="ask")
        nodes: set[str] = set()
        try:
            asyncio.run(walk(edge, user, project["id"], model, nodes))
        finally:
            e2e_nodes.update(nodes)
        user.wait_for_teardown(nodes)


async def walk(
    edge: Any, user: ChatUser, project_id: str, model: ScriptedModel, e2e_nodes: set[str]
) -> None:
    # The first turn asks to write a file (ask mode: the project chat is asked), then answers.
    write = tool_use("Bash", {"command": "printf hi > hello.txt", "description": "write it"})
    model.script(
        Turn([text("I'll write hello.txt."), write]),
        Turn([text("Wrote **hello.txt** for you.")]),
    )
    chat = user.new_chat(project_id, "write hello.txt")
    assert chat["status"] == "starting" and chat["topic"], chat
    chat_id = chat["id"]
    async with ChatViewer.connect(edge, user.session, project_id, chat_id) as live:
        # The user's message shows at once, before any workspace exists.
        prompt = await live.until(lambda m: m["role"] == "user")
        assert prompt["frame"]["text"] == "write hello.txt", prompt
        request = await live.until(is_frame("permission_request"))
        chat = await asyncio.to_thread(
            user.wait_for_status, project_id, chat_id, "active", CHAT_READY_SECONDS
        )
        workspace = user.workspace(chat["workspace_id"])
        assert workspace["status"] == "running", workspace
        e2e_nodes.add(workspace["node_id"])
        # Progress came first, inline, and the answer streamed before the question.
        kinds = [frame_type(m) for m in live.messages]
        assert "run" in kinds and kinds.index("run") < kinds.index("permission_request"), kinds
        assert agent_text(live.messages).startswith("I'll write hello.txt."), live.messages

        # The question answered from the project chat, not from the workspace's own viewer.
        assert request["frame"]["tool_call"], request
        request_id = request["frame"]["request_id"]
        allow = option(request["frame"], "allow_once")
        user.answer(project_id, chat_id, request_id, allow)
        # A second answer (another tab, a double click) changes nothing: the first one won.
        user.answer(project_id, chat_id, request_id, option(request["frame"], "reject_once"))
        resolved = await live.until(is_frame("permission_resolved"))
        assert (resolved["frame"]["outcome"], resolved["frame"]["option_id"]) == (
            "selected",
            allow,
        ), resolved
        ended = await live.until(is_frame("turn_ended"))
        assert ended["frame"]["stop_reason"] == "end_turn", ended
        resolutions = [m for m in live.messages if frame_type(m) == "permission_resolved"]
        assert resolutions == [resolved], resolutions
        assert "Wrote **hello.txt** for you." in agent_text(live.messages)
        assert in_container(workspace, "cat", f"{workspace['remote_folder']}/hello.txt") == "hi"

        # A follow-up goes to the running session.
        model.script(Turn([text("It says hi.")]))
        said = user.follow_up(project_id, chat_id, "what is in it?")
        assert said["role"] == "user" and said["frame"]["text"] == "what is in it?", said
        await live.until(lambda m: frame_type(m) == "turn_ended" and m["seq"] > ended["seq"])
        assert agent_text(live.messages).endswith("It says hi.")
        echoes = [m for m in live.messages if m["id"] == said["id"]]
        assert len(echoes) == 1, echoes  # the agent's echo of the prompt is not a second one
        follow_up_request = model.main_requests[-1]
        assert "write hello.txt" in conversation_of(follow_up_request)  # the same session

        # The chat holds every frame of the agent's session, as the node itself keeps them.
        await same_as_the_node(user, live, chat["workspace_id"], chat["agent_session_id"])

        # The workspace goes; the chat stays, stopped, and readable.
        user.delete_workspace(workspace["id"])
        stopped = await asyncio.to_thread(
            user.wait_for_status, project_id, chat_id, "stopped", CHAT_STOPPED_SECONDS
        )
        history = user.history(project_id, chat_id, page=7)  # small pages: paging is exercised
        while live.last_seq < history[-1]["seq"]:
            await live.next_frame()
        seen = list(live.messages)

    assert history == seen, "the history differs from what the live viewer saw"
    # Its agent is gone: a late answer to its question is refused, saying what to do.
    late = user.browser.post(
        f"/api/projects/{project_id}/chats/{chat_id}/permissions/{request_id}",
        json={"option_id": allow},
    )
    assert (late.status_code, late.json()["error"]) == (409, "chat_not_running"), late.text
    assert "send a message" in late.json()["message"]
    assert stopped["message_count"] <= len(history), stopped
    async with ChatViewer.connect(edge, user.session, project_id, chat_id) as later:
        await later.until_caught_up()
        assert later.messages[: len(seen)] == seen  # (the node may add its last frames)
    async with ChatViewer.connect(
        edge, user.session, project_id, chat_id, after=seen[5]["seq"]
    ) as resumed:
        await resumed.until_caught_up()
        assert resumed.messages[: len(seen) - 6] == seen[6:]

    # A follow-up now starts a fresh run, whose agent is told the conversation so far.
    model.script(Turn([text("Back on a new workspace.")]))
    before = len(model.main_requests)
    user.follow_up(project_id, chat_id, "are you still there?")
    fresh = user.wait_for_status(project_id, chat_id, "active", CHAT_READY_SECONDS)
    assert fresh["run_id"] != stopped["run_id"], fresh
    assert fresh["workspace_id"] not in (None, workspace["id"]), fresh
    e2e_nodes.add(user.workspace(fresh["workspace_id"])["node_id"])
    async with ChatViewer.connect(
        edge, user.session, project_id, chat_id, after=seen[-1]["seq"]
    ) as again:
        await again.until(is_frame("turn_ended"))
        assert agent_text(again.messages).endswith("Back on a new workspace.")
    first_prompt = conversation_of(model.main_requests[before])
    for earlier in ("write hello.txt", "Wrote **hello.txt** for you.", "It says hi."):
        assert earlier in first_prompt, f"the fresh run's first prompt lacks {earlier!r}"
    assert "are you still there?" in first_prompt
    user.delete_workspace(fresh["workspace_id"])
    user.wait_for_status(project_id, chat_id, "stopped", CHAT_STOPPED_SECONDS)
    assert user.history(project_id, chat_id)[: len(seen)] == seen  # nothing earlier changed


# --- 2. the outbox while the control plane is down ----------------------------------------


def test_messages_made_while_the_control_plane_is_down_arrive_once_in_order(
    tmp_path: Path,
    artifact: Path,
    model: ScriptedModel,
    github: FakeGitHub,
    hetzner: FakeHetzner,
    dns: FakeCloudflareDns,
    git: Any,
    e2e_nodes: set[str],
) -> None:
    data_dir = tmp_path / ".sam"
    repo = git.publish(make_repo(tmp_path, "outbox-demo", files={"README.md": "# outbox\n"}))
    origin_ca = dns.origin_ca_root(tmp_path)
    settings = {"vars": edge_vars(github, hetzner, dns, model), "trust_cas": [origin_ca]}
    gate = "/tmp/sam-e2e-go"
    # The turn runs a command that waits for the test's signal, then answers.
    wait_then_go = f"while [ ! -e {gate} ]; do sleep 0.1; done; echo resumed"
    model.script(
        Turn([text("Waiting for the signal."), tool_use("Bash", {"command": wait_then_go})]),
        Turn([text("The signal came: " + "done. " * 40)]),
    )
    with running_edge(data_dir, **settings) as edge:
        assert upload_agent(edge.data_dir, artifact).returncode == 0
        user = ChatUser.sign_in(edge, "alice", model)
        user.ok(
            "POST", "/api/credentials", 201, json={"kind": "hetzner", "secret": hetzner.add_token()}
        )
        project = user.project(repo, provider="hetzner", permission_mode="bypass")
        chat = user.new_chat(project["id"], "wait for the signal")
        chat = user.wait_for_status(project["id"], chat["id"], "active", CHAT_READY_SECONDS)
        workspace = user.workspace(chat["workspace_id"])
        e2e_nodes.add(workspace["node_id"])
        seen = asyncio.run(
            seen_until(edge, user, project["id"], chat["id"], is_frame("update:tool_call"))
        )
        port = edge.port

    # The edge is down: the command goes on, the turn ends, the outbox cannot send.
    [server] = [
        s for s in hetzner.all_servers() if s.labels.get("sam-node") == workspace["node_id"]
    ]
    subprocess.run(["docker", "exec", workspace["container_id"], "touch", gate], check=True)
    wait_for(lambda: model.remaining == 0, "the model's last turn", OUTBOX_RETRY_SECONDS)
    wait_for(
        lambda: "chat_outbox.send_failed" in server.boot.agent_log(),
        "the outbox to fail a send",
        OUTBOX_RETRY_SECONDS,
    )

    with running_edge(data_dir, port=port, **settings) as edge:
        user.browser.edge = edge
        rest = asyncio.run(
            seen_until(
                edge, user, project["id"], chat["id"], is_frame("turn_ended"), seen[-1]["seq"]
            )
        )
        history = user.history(project["id"], chat["id"])
        asyncio.run(
            same_as_the_node(user, None, workspace["id"], chat["agent_session_id"], history)
        )
        user.delete_workspace(workspace["id"])
        user.wait_for_teardown({workspace["node_id"]})
    assert history[: len(seen) + len(rest)] == seen + rest, "not what the viewers saw, in order"
    ids = [m["id"] for m in history]
    assert len(ids) == len(set(ids)), "a message arrived twice"
    assert "The signal came: done." in agent_text(rest)
    assert any("resumed" in json.dumps(m["frame"]) for m in rest), "the command's output is missing"


async def same_as_the_node(
    user: ChatUser,
    live: ChatViewer | None,
    workspace_id: str,
    session_id: str,
    history: list[Message] | None = None,
) -> None:
    """The chat (a live viewer's messages, or its history) holds the node's frames of the
    session, in order, each once: all it has delivered by now."""
    expected = shown_in_chat(await user.session_frames(workspace_id, session_id))
    last = expected[-1]["seq"]
    if live is not None:
        await live.until(lambda m: m["id"] == f"{session_id}:{last}")
        history = live.messages
    assert history is not None
    in_chat = [f for f in agent_frames_in_chat(history, session_id) if f["seq"] <= last]
    assert in_chat == expected, "the chat's frames of the session differ from the node's own"


async def seen_until(
    edge: Any, user: ChatUser, project_id: str, chat_id: str, wanted: Any, after: int = 0
) -> list[dict[str, Any]]:
    async with ChatViewer.connect(edge, user.session, project_id, chat_id, after=after) as viewer:
        await viewer.until(wanted)
        return list(viewer.messages)
