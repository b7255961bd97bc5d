"""The ProjectData Durable Object under real Pyodide: its RPC through the SDK's conversions,
one strictly increasing sequence under concurrent ingest with viewers attached, idempotent
batches, the caps, the viewer socket's `after=N` resume across an eviction (hibernating
WebSockets, see test_hibernating_websockets.py), and the D1 index following. Every public
RPC method is called (the last test checks that against the class)."""

import inspect
import json
from typing import Any

import pytest

from durable_objects.project_data import INDEX_EVERY_MESSAGES, ProjectData
from tests.pyodide.callers import API, APP, bearer, new_node, send_json, sign_in
from tests.pyodide.harness import PyodideWorker, http_response
from tests.pyodide.project_chat import (
    BINDING,
    NOW,
    SESSION,
    WORKSPACE,
    ChatHost,
    add_project,
    agent_frame,
    fill_chat,
    frames_until_caught_up,
    new_id,
    next_messages,
    open_viewer,
    outbox,
)
from wire.chat import (
    MAX_CHAT_MESSAGES,
    MAX_MESSAGE_BYTES,
    ChatInfo,
    ChatMessage,
    IngestResult,
)

HANDLERS = {"alarm", "fetch", "webSocketMessage", "webSocketClose"}
CALLED: set[str] = set()


def rpc(worker: PyodideWorker, project: str, method: str, *args: Any) -> Any:
    """`method` on the project's object, through the harness's RPC path (recorded)."""
    CALLED.add(method)
    return worker.durable_object(BINDING, project, method, project, *args)


def rpc_at_once(worker: PyodideWorker, project: str, method: str, calls: list[tuple]) -> list:
    """`method` called once per argument tuple, all at once; their answers in order."""
    CALLED.add(method)
    outcomes = worker.concurrently(
        *(PyodideWorker.rpc(BINDING, project, method, project, *args) for args in calls)
    )
    assert all(outcome.ok for outcome in outcomes), [o.error for o in outcomes if not o.ok]
    return [outcome.result for outcome in outcomes]


@pytest.fixture(scope="module")
def worker(chat_host: ChatHost) -> PyodideWorker:
    """The project chat's development host: RPC, and the routes a user and a node call."""
    return chat_host.worker


@pytest.fixture(scope="module")
def user(worker: PyodideWorker) -> str:
    user_id = new_id("u")
    worker.d1("DATABASE", "INSERT INTO users (id, login) VALUES (?, ?)", user_id, user_id)
    return user_id


@pytest.fixture
def project(worker: PyodideWorker, user: str) -> str:
    return add_project(worker, user)


def linked_chat(worker: PyodideWorker, project: str, user: str) -> str:
    chat = new_id("c")
    rpc(worker, project, "create_chat", chat, user, "a topic", NOW)
    rpc(worker, project, "link", chat, WORKSPACE, SESSION, new_id("r"), NOW)
    return chat


def test_a_chat_is_created_listed_and_read_back(
    worker: PyodideWorker, project: str, user: str
) -> None:
    first, second = new_id("c"), new_id("c")

    made = rpc(worker, project, "create_chat", first, user, "fix the build", NOW)
    rpc(worker, project, "create_chat", second, user, "later one", NOW + 5)

    info = ChatInfo.model_validate(made)
    assert (info.id, info.topic, info.status, info.message_count) == (
        first,
        "fix the build",
        "starting",
        0,
    )
    assert rpc(worker, project, "get_chat", first) == made
    listed = rpc(worker, project, "list_chats")
    assert [chat["id"] for chat in listed] == [second, first]  # newest activity first
    assert rpc(worker, project, "get_chat", "c-unknown") is None


def test_control_plane_messages_are_stored_once_in_seq_order(
    worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(worker, project, user)
    prompt = {"type": "prompt", "text": "hello", "prompt_id": "p1"}

    stored = rpc(worker, project, "add_message", chat, "prompt:p1", prompt, NOW)
    again = rpc(worker, project, "add_message", chat, "prompt:p1", prompt, NOW)
    run = {"type": "run", "run_id": "r1", "step": "workspace", "status": "done", "detail": ""}
    later = rpc(worker, project, "add_message", chat, "run:r1:1", run, NOW)

    message = ChatMessage.model_validate(stored)
    assert (message.role, message.frame, message.truncated) == ("user", prompt, False)
    assert again is None
    assert later["seq"] > stored["seq"]
    page = rpc(worker, project, "messages", chat, 0, None, 10)
    assert [m["id"] for m in page] == ["prompt:p1", "run:r1:1"]


def test_a_retried_batch_adds_nothing_twice(worker: PyodideWorker, project: str, user: str) -> None:
    chat = linked_chat(worker, project, user)
    batch = outbox(project, chat, range(1, 4))

    first = rpc(worker, project, "ingest", WORKSPACE, batch, NOW)
    retried = rpc(worker, project, "ingest", WORKSPACE, batch, NOW)

    assert IngestResult.model_validate(first) == IngestResult(accepted=3, duplicates=0)
    assert IngestResult.model_validate(retried) == IngestResult(accepted=0, duplicates=3)
    page = rpc(worker, project, "messages", chat, 0, None, 10)
    assert [m["id"] for m in page] == [f"{SESSION}:{seq}" for seq in range(1, 4)]


def test_a_workspace_writes_only_to_its_own_chats(
    worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(worker, project, user)
    mixed = outbox(project, chat, range(1, 3))

    refused = rpc(worker, project, "ingest", "w-other", mixed, NOW)

    assert refused["error"] == "chat_not_linked"
    assert "w-other" in refused["message"]
    assert rpc(worker, project, "messages", chat, 0, None, 10) == []  # all or nothing


def test_concurrent_ingest_keeps_one_increasing_sequence_every_viewer_sees_once(
    worker: PyodideWorker, project: str, user: str
) -> None:
    chats = [linked_chat(worker, project, user) for _ in range(2)]
    viewers = {chat: [open_viewer(worker, project, f"chat={chat}&after=0")] for chat in chats}
    viewers[chats[0]].append(open_viewer(worker, project, f"chat={chats[0]}&after=0"))
    for sockets in viewers.values():
        for viewer in sockets:
            assert frames_until_caught_up(viewer)[0] == []
    batches = [
        (WORKSPACE, outbox(project, chat, range(start, start + 5), session=f"as-{index}"), NOW)
        for index, chat in enumerate(chats)
        for start in range(0, 20, 5)
    ]

    results = rpc_at_once(worker, project, "ingest", batches)

    assert all(result == {"accepted": 5, "duplicates": 0, "refused": 0} for result in results)
    for chat, sockets in viewers.items():
        stored = rpc(worker, project, "messages", chat, 0, None, 100)
        assert len(stored) == 20
        for viewer in sockets:
            seen = next_messages(viewer, 20)
            assert seen == stored  # each once, in the order stored
            seqs = [message["seq"] for message in seen]
            assert seqs == sorted(set(seqs))
    all_seqs = sorted(
        m["seq"] for chat in chats for m in rpc(worker, project, "messages", chat, 0, None, 100)
    )
    assert all_seqs == list(range(all_seqs[0], all_seqs[0] + 40))  # one sequence, no gaps


def test_concurrent_ingest_over_http_reaches_viewers_through_the_edge_once_in_order(
    worker: PyodideWorker, chat_host: ChatHost
) -> None:
    owner = sign_in(worker, "pychats")
    node_id = new_node(worker, chat_host.launcher, owner)
    workspace_id = new_id("w")
    worker.d1(
        "DATABASE",
        "INSERT INTO workspaces (id, user_id, node_id, name, repository, status, provider) "
        "VALUES (?, ?, ?, 'chat', 'https://example.com/c.git', 'running', 'local')",
        workspace_id,
        owner.id,
        node_id,
    )
    made = send_json(
        worker,
        "POST",
        f"{APP}/api/projects",
        {"repository": "https://example.com/c.git"},
        owner.session_headers(),
    )
    assert made.status == 201, made.body
    project = made.json()["id"]
    chat = new_id("c")
    rpc(worker, project, "create_chat", chat, owner.id, "over http", NOW)
    rpc(worker, project, "link", chat, workspace_id, SESSION, new_id("r"), NOW)
    viewers = []
    for headers in (owner.session_headers(), owner.token_headers()):
        answer = worker.open_web_socket(
            f"{APP}/api/projects/{project}/ws?chat={chat}&after=0", headers=headers
        )
        assert answer.status == 101, answer.body
        assert answer.socket is not None
        assert frames_until_caught_up(answer.socket)[0] == []
        viewers.append(answer.socket)
    node = {**bearer(owner.node_tokens[node_id]), "content-type": "application/json"}
    url = f"{API}/api/workspaces/{workspace_id}/chat-messages"
    posts = [
        PyodideWorker.request(
            url, "POST", node, json.dumps({"messages": outbox(project, chat, seqs)}).encode()
        )
        for seqs in (range(0, 5), range(5, 10), range(10, 15), range(0, 5))  # one a retry
    ]

    answers = [http_response(outcome.result) for outcome in worker.concurrently(*posts)]

    assert [a.status for a in answers] == [200] * 4, [a.body for a in answers]
    assert sum(a.json()["accepted"] for a in answers) == 15
    assert sum(a.json()["duplicates"] for a in answers) == 5
    stored = rpc(worker, project, "messages", chat, 0, None, 100)
    assert sorted(m["id"] for m in stored) == sorted(f"{SESSION}:{n}" for n in range(15))
    for viewer in viewers:
        assert next_messages(viewer, 15) == stored  # each once, in seq order
    seqs = [m["seq"] for m in stored]
    assert seqs == list(range(seqs[0], seqs[0] + 15))
    stranger = sign_in(worker, "pychats-stranger")
    refused = worker.open_web_socket(
        f"{APP}/api/projects/{project}/ws?chat={chat}&after=0", headers=stranger.session_headers()
    )
    assert (refused.status, refused.socket) == (404, None)


def test_a_viewer_resumes_after_n_across_an_eviction(
    worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(worker, project, user)
    rpc(worker, project, "ingest", WORKSPACE, outbox(project, chat, range(1, 6)), NOW)
    stored = rpc(worker, project, "messages", chat, 0, None, 10)
    seen_up_to = stored[2]["seq"]

    live = open_viewer(worker, project, f"chat={chat}&after={seen_up_to}")
    replayed, last_seq = frames_until_caught_up(live)
    assert replayed == stored[3:]
    assert last_seq == stored[-1]["seq"]

    assert worker.evict(BINDING, project)
    rpc(worker, project, "ingest", WORKSPACE, outbox(project, chat, range(6, 8)), NOW)
    fresh = rpc(worker, project, "messages", chat, last_seq, None, 10)
    assert next_messages(live, 2) == fresh  # the evicted object's viewer is still served

    assert worker.evict(BINDING, project)
    resumed = open_viewer(worker, project, f"chat={chat}&after={seen_up_to}")
    assert frames_until_caught_up(resumed)[0] == stored[3:] + fresh


def test_a_dropped_viewer_leaves_the_others_served(
    worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(worker, project, user)
    gone, staying = (open_viewer(worker, project, f"chat={chat}&after=0") for _ in range(2))
    frames_until_caught_up(gone)
    frames_until_caught_up(staying)

    gone.drop()  # a tab that lost its connection, no Close frame
    rpc(worker, project, "ingest", WORKSPACE, outbox(project, chat, range(1, 3)), NOW)

    assert next_messages(staying, 2) == rpc(worker, project, "messages", chat, 0, None, 10)


def test_a_viewer_only_listens_and_bad_viewer_requests_are_refused(
    worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(worker, project, user)
    viewer = open_viewer(worker, project, f"chat={chat}&after=0")
    frames_until_caught_up(viewer)

    viewer.send("hello?")

    error = viewer.receive_json()
    assert error["type"] == "error" and error["code"] == "viewer_read_only"
    base = f"https://project-data/viewer?project={project}"
    for query, status in [("&chat=c-none", 404), ("&chat=bad%20id", 400), ("&after=-1", 400)]:
        refused = worker.open_web_socket(base + query, object=(BINDING, project))
        assert refused.status == status, (query, refused.body)
        assert refused.socket is None
        assert set(refused.json()) == {"error", "message"}


def test_a_frame_over_the_size_cap_is_kept_truncated_and_marked(
    worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(worker, project, user)
    [big, small] = outbox(project, chat, range(1, 3))
    big["frame"] = agent_frame(1, "x" * (MAX_MESSAGE_BYTES + 10))

    rpc(worker, project, "ingest", WORKSPACE, [big, small], NOW)

    cut, whole = rpc(worker, project, "messages", chat, 0, None, 10)
    assert cut["truncated"] is True
    assert len(json.dumps(cut["frame"]).encode()) <= MAX_MESSAGE_BYTES
    assert cut["role"] == "assistant"
    assert whole["truncated"] is False
    assert whole["frame"] == small["frame"]


def test_a_full_chat_refuses_more_messages(worker: PyodideWorker, project: str, user: str) -> None:
    chat = linked_chat(worker, project, user)
    fill_chat(worker, project, chat, MAX_CHAT_MESSAGES - 2)

    over = outbox(project, chat, range(1, 6))
    result = rpc(worker, project, "ingest", WORKSPACE, over, NOW)
    late = rpc(worker, project, "add_message", chat, "m-late", {"type": "run"}, NOW)

    assert result == {"accepted": 2, "duplicates": 0, "refused": 3}
    assert late["error"] == "chat_full"
    assert "new chat" in late["message"]
    assert rpc(worker, project, "get_chat", chat)["message_count"] == MAX_CHAT_MESSAGES


def index_row(worker: PyodideWorker, chat: str) -> dict[str, Any]:
    [row] = worker.d1("DATABASE", "SELECT * FROM chats WHERE id = ?", chat)
    return row


def test_the_d1_index_follows_without_a_write_per_message(
    worker: PyodideWorker, project: str, user: str
) -> None:
    chat = new_id("c")
    rpc(worker, project, "create_chat", chat, user, "indexed", NOW)
    assert index_row(worker, chat)["status"] == "starting"
    rpc(worker, project, "link", chat, WORKSPACE, SESSION, "r-index", NOW)
    assert index_row(worker, chat)["workspace_id"] == WORKSPACE

    rpc(worker, project, "ingest", WORKSPACE, outbox(project, chat, range(1, 4)), NOW)
    assert index_row(worker, chat)["message_count"] == 0  # not written per message
    assert worker.run_alarm(BINDING, project)  # the chat went quiet: the alarm catches up
    assert index_row(worker, chat)["message_count"] == 3

    many = outbox(project, chat, range(4, 4 + INDEX_EVERY_MESSAGES))
    rpc(worker, project, "ingest", WORKSPACE, many, NOW + 1)
    assert index_row(worker, chat)["message_count"] == 3 + INDEX_EVERY_MESSAGES

    rpc(worker, project, "set_status", chat, "active", NOW + 2)
    assert index_row(worker, chat)["status"] == "active"
    assert rpc(worker, project, "delete_chat", chat) is True
    assert worker.d1("DATABASE", "SELECT id FROM chats WHERE id = ?", chat) == []


def test_deleting_the_project_closes_its_viewers_and_removes_its_chats(
    worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(worker, project, user)
    project_viewer = open_viewer(worker, project, "after=0")
    assert project_viewer.receive_json()["type"] == "caught_up"

    assert rpc(worker, project, "delete_project") == 1

    assert project_viewer.receive_json() == {"type": "chat_deleted", "chat_id": chat}
    assert project_viewer.next_event()["type"] == "close"
    assert rpc(worker, project, "list_chats") == []


def test_bad_calls_are_refused_with_what_to_do(
    worker: PyodideWorker, project: str, user: str
) -> None:
    bad_id = rpc(worker, project, "create_chat", "no spaces", user, "t", NOW)
    chat = linked_chat(worker, project, user)
    bad_status = rpc(worker, project, "set_status", chat, "sleeping", NOW)
    missing = rpc(worker, project, "messages", "c-none", 0, None, 10)

    assert bad_id["error"] == "invalid_chat_id"
    assert bad_status["error"] == "invalid_chat_status"
    assert missing["error"] == "chat_not_found"


def test_every_rpc_method_was_called(worker: PyodideWorker) -> None:
    worker.require_main_module()
    public = {
        name
        for name, member in inspect.getmembers(ProjectData, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in HANDLERS
    }
    assert public, "ProjectData has RPC methods"
    missed = sorted(public - CALLED)
    assert not missed, f"ProjectData RPC methods never called under real Pyodide: {missed}"
