"""Projects and their chats through the real local edge: HTTP and viewer WebSockets from
outside, as the browser, a script and a node agent's outbox reach them.

Chats are made and linked through ProjectData's RPC (worker/projects/chat_data.py), as the
TaskRunner does; everything else goes over the network. Covers: a project's life (create
with defaults, list, show, update, delete with its chats), the rules its fields follow,
another user's project answering 404 on every route (the viewer socket too), ingest over
HTTP from concurrent callers with viewers attached (every viewer gets every message once,
in order), idempotent batches, the ingest's refusals (malformed, oversized, a chat of
another workspace, no or another node's token), paging, and a viewer resuming after an
edge restart.
"""

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.durable_objects.project_support import outbox
from tests.support.wait import eventually
from tests.worker.projects.edge_support import (
    InProcessEdge,
    Member,
    chat_id,
    in_process_edge,
    join,
    node_workspace,
)
from wire.chat import MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, MAX_PAGE_MESSAGES
from worker.projects import chat_data

REPOSITORY = "https://example.com/acme/widgets.git"
FRAME_TIMEOUT_SECONDS = 15.0


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[InProcessEdge]:
    async with in_process_edge(tmp_path / ".sam") as running:
        yield running


@pytest.fixture
async def alice(edge: InProcessEdge) -> Member:
    return await join(edge, "alice")


@pytest.fixture
async def bob(edge: InProcessEdge) -> Member:
    return await join(edge, "bob")


async def new_project(edge: InProcessEdge, member: Member, **fields: Any) -> dict:
    async with edge.client(**member.bearer()) as api:
        created = await api.post("/api/projects", json={"repository": REPOSITORY, **fields})
    assert created.status_code == 201, created.text
    return created.json()


async def linked_chat(edge: InProcessEdge, project_id: str, user_id: str, workspace: str) -> str:
    chat = chat_id()
    await chat_data.create_chat(edge.deployment, project_id, chat, user_id, "Fix it")
    await chat_data.link(edge.deployment, project_id, chat, workspace, "s1", "r1")
    return chat


class SocketViewer:
    """A viewer over the network: every frame it receives, parsed, in order."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self.socket = socket
        self.frames: list[dict] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.socket:
            if message.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(json.loads(message.data))

    def seqs(self) -> list[int]:
        return [f["message"]["seq"] for f in self.frames if f["type"] == "message"]

    async def until(self, what: str, check: Any) -> Any:
        return await eventually(lambda: check(self), what, FRAME_TIMEOUT_SECONDS)

    async def close(self) -> None:
        await self.socket.close()
        await self._reader


async def connect(
    session: aiohttp.ClientSession,
    edge: InProcessEdge,
    project_id: str,
    params: dict[str, Any],
    headers: dict[str, str],
    host: str = "api",
) -> SocketViewer:
    socket = await session.ws_connect(
        f"{edge.base_url}/api/projects/{project_id}/ws",
        params=params,
        headers={"host": edge.host(host), **headers},
    )
    return SocketViewer(socket)


async def refused_socket(
    edge: InProcessEdge, project_id: str, params: dict[str, Any], headers: dict[str, str]
) -> int:
    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await connect(session, edge, project_id, params, headers)
    return refused.value.status


# --- projects ----------------------------------------------------------------------------------


async def test_a_project_is_made_from_a_repository_with_defaults_and_changed_later(
    edge: InProcessEdge, alice: Member
) -> None:
    project = await new_project(edge, alice)
    assert project["name"] == "widgets"
    assert (project["provider"], project["agent"], project["permission_mode"]) == (
        "local",
        "claude-code",
        "ask",
    )
    assert project["default_branch"] is None and project["node_size"] is None
    async with edge.client(**alice.bearer()) as api:
        changed = await api.patch(
            f"/api/projects/{project['id']}",
            json={"name": "Widgets", "default_branch": "develop", "permission_mode": "bypass"},
        )
        assert changed.status_code == 200, changed.text
        assert (changed.json()["name"], changed.json()["default_branch"]) == ("Widgets", "develop")
        shown = (await api.get(f"/api/projects/{project['id']}")).json()
        assert shown["permission_mode"] == "bypass" and shown["repository"] == REPOSITORY
        listed = (await api.get("/api/projects")).json()["projects"]
        assert [p["id"] for p in listed] == [project["id"]]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"repository": "ftp://example.com/x.git"}, "repository"),
        ({"repository": "https://example.com/x.git; rm -rf /"}, "repository"),
        ({"repository": "/srv/repo", "provider": "hetzner"}, "repository"),
        ({"repository": REPOSITORY, "provider": "aws"}, "provider"),
        ({"repository": REPOSITORY, "default_branch": "-rf"}, "default_branch"),
        ({"repository": REPOSITORY, "node_size": "Huge Box"}, "node_size"),
        ({"repository": REPOSITORY, "agent": "Claude Code"}, "agent"),
        ({"repository": REPOSITORY, "permission_mode": "yolo"}, "permission_mode"),
        ({"repository": REPOSITORY, "name": "x" * 65}, "name"),
    ],
)
async def test_a_project_follows_the_workspace_rules(
    edge: InProcessEdge, alice: Member, fields: dict, named: str
) -> None:
    async with edge.client(**alice.bearer()) as api:
        refused = await api.post("/api/projects", json=fields)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"] == "invalid_project"
        assert refused.json()["message"].startswith(named)
        assert (await api.get("/api/projects")).json()["projects"] == []


async def test_a_bad_change_is_refused_and_changes_nothing(
    edge: InProcessEdge, alice: Member
) -> None:
    project = await new_project(edge, alice)
    async with edge.client(**alice.bearer()) as api:
        for change in ({"agent": "BAD"}, {"unknown": 1}, {"provider": "mars"}):
            refused = await api.patch(f"/api/projects/{project['id']}", json=change)
            assert refused.status_code == 400, refused.text
        assert (await api.get(f"/api/projects/{project['id']}")).json() == project


async def test_another_users_project_is_a_404_everywhere(
    edge: InProcessEdge, alice: Member, bob: Member
) -> None:
    project = await new_project(edge, alice)
    workspace, _ = await node_workspace(edge, alice.id)
    chat = await linked_chat(edge, project["id"], alice.id, workspace)
    base = f"/api/projects/{project['id']}"
    async with edge.client(**bob.bearer()) as api:
        for method, path, body in [
            ("GET", base, None),
            ("PATCH", base, {"name": "mine now"}),
            ("DELETE", base, None),
            ("GET", f"{base}/chats", None),
            ("GET", f"{base}/chats/{chat}", None),
            ("GET", f"{base}/chats/{chat}/messages", None),
        ]:
            answer = await api.request(method, path, json=body)
            assert answer.status_code == 404, (method, path, answer.text)
            assert answer.json()["error"] == "project_not_found"
        assert (await api.get("/api/chats")).json()["chats"] == []
        assert (await api.get("/api/projects")).json()["projects"] == []
    assert await refused_socket(edge, project["id"], {"chat": chat}, bob.bearer()) == 404
    async with edge.client(**alice.bearer()) as api:
        assert (await api.get(base)).json()["name"] == "widgets"


async def test_deleting_a_project_takes_its_chats_with_it(
    edge: InProcessEdge, alice: Member
) -> None:
    project = await new_project(edge, alice)
    workspace, token = await node_workspace(edge, alice.id)
    chat = await linked_chat(edge, project["id"], alice.id, workspace)
    async with edge.client(**alice.bearer()) as api:
        assert [c["id"] for c in (await api.get("/api/chats")).json()["chats"]] == [chat]
        assert (await api.delete(f"/api/projects/{project['id']}")).status_code == 204
        assert (await api.get(f"/api/projects/{project['id']}")).status_code == 404
        assert (await api.get("/api/chats")).json()["chats"] == []
    assert await chat_data.list_chats(edge.deployment, project["id"]) == []
    async with edge.client(authorization=f"Bearer {token}") as agent:
        late = await agent.post(
            f"/api/workspaces/{workspace}/chat-messages",
            json={"messages": outbox(project["id"], chat, "s1", range(1))},
        )
    assert late.status_code == 403 and late.json()["error"] == "chat_not_linked"


# --- ingest and viewers ---------------------------------------------------------------------


async def test_concurrent_ingest_over_http_reaches_every_viewer_once_in_order(
    edge: InProcessEdge, alice: Member
) -> None:
    project = await new_project(edge, alice)
    workspace, token = await node_workspace(edge, alice.id)
    chat = await linked_chat(edge, project["id"], alice.id, workspace)
    async with aiohttp.ClientSession() as session:
        viewers = [
            await connect(session, edge, project["id"], {"chat": chat, "after": 0}, alice.bearer())
            for _ in range(3)
        ]
        browser = await connect(
            session,
            edge,
            project["id"],
            {"chat": chat},
            {"cookie": f"sam_session={alice.session}", "origin": edge.app_origin},
            host="app",
        )
        viewers.append(browser)
        batches = [outbox(project["id"], chat, f"s{n}", range(25)) for n in range(8)]
        async with edge.client(authorization=f"Bearer {token}") as agent:
            answers = await asyncio.gather(
                *(
                    agent.post(f"/api/workspaces/{workspace}/chat-messages", json={"messages": b})
                    for b in batches
                )
            )
            retried = await agent.post(
                f"/api/workspaces/{workspace}/chat-messages", json={"messages": batches[0]}
            )
        assert [a.status_code for a in answers] == [200] * len(batches)
        assert sum(a.json()["accepted"] for a in answers) == 200
        assert retried.json() == {"accepted": 0, "duplicates": 25, "refused": 0}
        for viewer in viewers:
            await viewer.until("200 messages", lambda v: len(v.seqs()) >= 200)
            assert viewer.seqs() == list(range(1, 201))  # strictly increasing, each once
            await viewer.close()


async def test_a_viewer_resumes_after_n_across_an_edge_restart(tmp_path: Path) -> None:
    data_dir = tmp_path / ".sam"
    async with in_process_edge(data_dir) as edge:
        port = edge.port
        alice = await join(edge, "alice")
        project = await new_project(edge, alice)
        workspace, token = await node_workspace(edge, alice.id)
        chat = await linked_chat(edge, project["id"], alice.id, workspace)
        async with edge.client(authorization=f"Bearer {token}") as agent:
            await agent.post(
                f"/api/workspaces/{workspace}/chat-messages",
                json={"messages": outbox(project["id"], chat, "s1", range(10))},
            )
        async with aiohttp.ClientSession() as session:
            viewer = await connect(session, edge, project["id"], {"chat": chat}, alice.bearer())
            await viewer.until("10 messages", lambda v: len(v.seqs()) == 10)
            seen = viewer.seqs()[-1]
            await viewer.close()
    async with in_process_edge(data_dir, port) as edge:
        async with edge.client(authorization=f"Bearer {token}") as agent:
            await agent.post(
                f"/api/workspaces/{workspace}/chat-messages",
                json={"messages": outbox(project["id"], chat, "s1", range(8, 15))},
            )
        async with aiohttp.ClientSession() as session:
            params = {"chat": chat, "after": seen}
            viewer = await connect(session, edge, project["id"], params, alice.bearer())
            caught_up = await viewer.until(
                "caught_up", lambda v: next((f for f in v.frames if f["type"] == "caught_up"), None)
            )
            assert viewer.seqs() == list(range(seen + 1, seen + 6))  # 10 to 14 are new
            assert caught_up["last_seq"] == seen + 5
            await viewer.close()


async def test_ingest_refuses_what_is_not_a_good_batch_from_this_workspace(
    edge: InProcessEdge, alice: Member, bob: Member
) -> None:
    project = await new_project(edge, alice)
    workspace, token = await node_workspace(edge, alice.id)
    other_workspace, other_token = await node_workspace(edge, alice.id)
    bobs_workspace, bobs_token = await node_workspace(edge, bob.id)
    chat = await linked_chat(edge, project["id"], alice.id, workspace)
    theirs = await linked_chat(edge, project["id"], alice.id, other_workspace)
    url = f"/api/workspaces/{workspace}/chat-messages"
    good = {"messages": outbox(project["id"], chat, "s1", range(1))}
    one = outbox(project["id"], chat, "s1", range(1))[0]
    async with edge.client(authorization=f"Bearer {token}") as agent:
        cases = [
            (await agent.post(url, content=b"{not json"), 400),
            (await agent.post(url, json={"messages": []}), 400),
            (await agent.post(url, json={"messages": [{**one, "id": "bad id!"}]}), 400),
            (await agent.post(url, json={"messages": [{**one, "extra": 1}]}), 400),
            (await agent.post(url, json={"messages": [one] * (MAX_BATCH_MESSAGES + 1)}), 400),
            (
                await agent.post(
                    url, json={"messages": outbox(project["id"], theirs, "s", range(1))}
                ),
                403,
            ),
        ]
        big = outbox(project["id"], chat, "s1", range(1), text="y" * MAX_BATCH_BYTES)
        cases.append((await agent.post(url, json={"messages": big}), 413))
    async with edge.client() as anonymous:
        cases.append((await anonymous.post(url, json=good), 401))
    async with edge.client(authorization=f"Bearer {bobs_token}") as stranger:
        cases.append((await stranger.post(url, json=good), 403))
        # Bob's own workspace, naming Alice's project and chat: not linked to it.
        own_url = f"/api/workspaces/{bobs_workspace}/chat-messages"
        cases.append((await stranger.post(own_url, json=good), 403))
    async with edge.client(authorization=f"Bearer {other_token}") as neighbour:
        cases.append((await neighbour.post(url, json=good), 403))
    async with edge.client(**alice.bearer()) as owner:  # a user's token is not a node's
        cases.append((await owner.post(url, json=good), 401))
    for answer, status in cases:
        assert answer.status_code == status, answer.text
        assert set(answer.json()) == {"error", "message"}
    assert (await chat_data.get_chat(edge.deployment, project["id"], chat))["message_count"] == 0


async def test_history_pages_and_bad_paging_values(edge: InProcessEdge, alice: Member) -> None:
    project = await new_project(edge, alice)
    workspace, token = await node_workspace(edge, alice.id)
    chat = await linked_chat(edge, project["id"], alice.id, workspace)
    async with edge.client(authorization=f"Bearer {token}") as agent:
        await agent.post(
            f"/api/workspaces/{workspace}/chat-messages",
            json={"messages": outbox(project["id"], chat, "s1", range(30))},
        )
    url = f"/api/projects/{project['id']}/chats/{chat}/messages"
    async with edge.client(**alice.bearer()) as api:
        last = (await api.get(url, params={"limit": 10})).json()
        assert [m["seq"] for m in last["messages"]] == list(range(21, 31)) and last["has_more"]
        older = (await api.get(url, params={"limit": 10, "before": 21})).json()
        assert [m["seq"] for m in older["messages"]] == list(range(11, 21))
        first = (await api.get(url, params={"limit": 10, "before": 11})).json()
        assert len(first["messages"]) == 10 and not first["has_more"]
        after = (await api.get(url, params={"after": 28})).json()
        assert [m["seq"] for m in after["messages"]] == [29, 30] and not after["has_more"]
        for bad in (
            {"after": -1},
            {"after": "x"},
            {"before": 0},
            {"limit": 0},
            {"limit": MAX_PAGE_MESSAGES + 1},
        ):
            refused = await api.get(url, params=bad)
            assert refused.status_code == 400, (bad, refused.text)
        missing = await api.get(f"/api/projects/{project['id']}/chats/cnope/messages")
        assert missing.status_code == 404 and missing.json()["error"] == "chat_not_found"
        shown = (await api.get(f"/api/projects/{project['id']}/chats/{chat}")).json()
        assert shown["message_count"] == 30 and shown["workspace_id"] == workspace


async def test_the_viewer_socket_refuses_before_it_opens(
    edge: InProcessEdge, alice: Member
) -> None:
    project = await new_project(edge, alice)
    workspace, node_token = await node_workspace(edge, alice.id)
    chat = await linked_chat(edge, project["id"], alice.id, workspace)
    cookie = {"cookie": f"sam_session={alice.session}"}
    pid = project["id"]
    assert await refused_socket(edge, pid, {"chat": chat}, {}) == 401
    assert await refused_socket(edge, pid, {"chat": chat}, cookie) == 403  # no Origin
    evil = {**cookie, "origin": "https://evil.example"}
    assert await refused_socket(edge, pid, {"chat": chat}, evil) == 403
    assert (
        await refused_socket(edge, pid, {"chat": chat}, {"authorization": f"Bearer {node_token}"})
        == 401
    )
    assert await refused_socket(edge, pid, {"chat": chat, "after": "-1"}, alice.bearer()) == 400
    assert await refused_socket(edge, pid, {"chat": "bad chat!"}, alice.bearer()) == 400
    assert await refused_socket(edge, pid, {"chat": "cmissing"}, alice.bearer()) == 404
    assert await refused_socket(edge, "pmissing", {"chat": chat}, alice.bearer()) == 404
    async with edge.client(**alice.bearer()) as api:
        plain = await api.get(f"/api/projects/{pid}/ws")
        assert plain.status_code == 400 and plain.json()["error"] == "websocket_required"
    async with aiohttp.ClientSession() as session:
        viewer = await connect(session, edge, pid, {}, alice.bearer())
        await viewer.until("caught_up", lambda v: v.frames)
        await chat_data.set_status(edge.deployment, pid, chat, "active")
        event = await viewer.until("a chat event", lambda v: v.frames[1:] and v.frames[1])
        assert event["type"] == "chat" and event["chat"]["status"] == "active"
        await viewer.socket.send_str("hello?")
        error = await viewer.until("an error frame", lambda v: v.frames[2:] and v.frames[2])
        assert error["type"] == "error" and error["code"] == "viewer_read_only"
        await viewer.close()
