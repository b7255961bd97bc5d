"""The ProjectData Durable Object under real Pyodide: its RPC through the SDK's conversions,
one strictly increasing sequence under concurrent ingest with viewers attached, idempotent
batches, the caps, the viewer socket's `after=N` resume across an eviction (hibernating
WebSockets, see test_hibernating_websockets.py), and the D1 index following. Every public
RPC method is called (the last test checks that against the class)."""

import inspect
import json
import secrets
from datetime import UTC, datetime
from typing import Any

import pytest

from durable_objects.project_data import INDEX_EVERY_MESSAGES, ProjectData
from tests.pyodide.harness import ClientWebSocket, PyodideWorker
from wire.chat import (
    MAX_CHAT_MESSAGES,
    MAX_MESSAGE_BYTES,
    VIEWER_FRAMES,
    ChatInfo,
    ChatMessage,
    IngestResult,
)

BINDING = "PROJECT_DATA"
HANDLERS = {"alarm", "fetch", "webSocketMessage", "webSocketClose"}
CALLED: set[str] = set()
WORKSPACE = "w-harness"
SESSION = "as-harness"
NOW = 1_800_000_000.0


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


@pytest.fixture(scope="module")
def user(pyodide_worker: PyodideWorker) -> str:
    user_id = new_id("u")
    pyodide_worker.d1("DATABASE", "INSERT INTO users (id, login) VALUES (?, ?)", user_id, user_id)
    return user_id


@pytest.fixture
def project(pyodide_worker: PyodideWorker, user: str) -> str:
    """A project row in D1 (the chat index refers to it), its object not yet made."""
    project_id = new_id("p")
    stamp = datetime.fromtimestamp(NOW, UTC).isoformat()
    pyodide_worker.d1(
        "DATABASE",
        "INSERT INTO projects (id, user_id, name, repository, provider, agent, permission_mode,"
        " created_at, updated_at) VALUES (?, ?, 'repo', 'https://example.com/r.git', 'local',"
        " 'claude-code', 'ask', ?, ?)",
        project_id,
        user,
        stamp,
        stamp,
    )
    return project_id


def linked_chat(worker: PyodideWorker, project: str, user: str) -> str:
    chat = new_id("c")
    rpc(worker, project, "create_chat", chat, user, "a topic", NOW)
    rpc(worker, project, "link", chat, WORKSPACE, SESSION, new_id("r"), NOW)
    return chat


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


def test_a_chat_is_created_listed_and_read_back(
    pyodide_worker: PyodideWorker, project: str, user: str
) -> None:
    first, second = new_id("c"), new_id("c")

    made = rpc(pyodide_worker, project, "create_chat", first, user, "fix the build", NOW)
    rpc(pyodide_worker, project, "create_chat", second, user, "later one", NOW + 5)

    info = ChatInfo.model_validate(made)
    assert (info.id, info.topic, info.status, info.message_count) == (
        first,
        "fix the build",
        "starting",
        0,
    )
    assert rpc(pyodide_worker, project, "get_chat", first) == made
    listed = rpc(pyodide_worker, project, "list_chats")
    assert [chat["id"] for chat in listed] == [second, first]  # newest activity first
    assert rpc(pyodide_worker, project, "get_chat", "c-unknown") is None


def test_control_plane_messages_are_stored_once_in_seq_order(
    pyodide_worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(pyodide_worker, project, user)
    prompt = {"type": "prompt", "text": "hello", "prompt_id": "p1"}

    stored = rpc(pyodide_worker, project, "add_message", chat, "prompt:p1", prompt, NOW)
    again = rpc(pyodide_worker, project, "add_message", chat, "prompt:p1", prompt, NOW)
    run = {"type": "run", "run_id": "r1", "step": "workspace", "status": "done", "detail": ""}
    later = rpc(pyodide_worker, project, "add_message", chat, "run:r1:1", run, NOW)

    message = ChatMessage.model_validate(stored)
    assert (message.role, message.frame, message.truncated) == ("user", prompt, False)
    assert again is None
    assert later["seq"] > stored["seq"]
    page = rpc(pyodide_worker, project, "messages", chat, 0, None, 10)
    assert [m["id"] for m in page] == ["prompt:p1", "run:r1:1"]


def test_a_retried_batch_adds_nothing_twice(
    pyodide_worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(pyodide_worker, project, user)
    batch = outbox(project, chat, range(1, 4))

    first = rpc(pyodide_worker, project, "ingest", WORKSPACE, batch, NOW)
    retried = rpc(pyodide_worker, project, "ingest", WORKSPACE, batch, NOW)

    assert IngestResult.model_validate(first) == IngestResult(accepted=3, duplicates=0)
    assert IngestResult.model_validate(retried) == IngestResult(accepted=0, duplicates=3)
    page = rpc(pyodide_worker, project, "messages", chat, 0, None, 10)
    assert [m["id"] for m in page] == [f"{SESSION}:{seq}" for seq in range(1, 4)]


def test_a_workspace_writes_only_to_its_own_chats(
    pyodide_worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(pyodide_worker, project, user)
    mixed = outbox(project, chat, range(1, 3))

    refused = rpc(pyodide_worker, project, "ingest", "w-other", mixed, NOW)

    assert refused["error"] == "chat_not_linked"
    assert "w-other" in refused["message"]
    assert rpc(pyodide_worker, project, "messages", chat, 0, None, 10) == []  # all or nothing


def test_concurrent_ingest_keeps_one_increasing_sequence_every_viewer_sees_once(
    pyodide_worker: PyodideWorker, project: str, user: str
) -> None:
    chats = [linked_chat(pyodide_worker, project, user) for _ in range(2)]
    viewers = {
        chat: [open_viewer(pyodide_worker, project, f"chat={chat}&after=0")] for chat in chats
    }
    viewers[chats[0]].append(open_viewer(pyodide_worker, project, f"chat={chats[0]}&after=0"))
    for sockets in viewers.values():
        for viewer in sockets:
            assert frames_until_caught_up(viewer)[0] == []
    batches = [
        (WORKSPACE, outbox(project, chat, range(start, start + 5), session=f"as-{index}"), NOW)
        for index, chat in enumerate(chats)
        for start in range(0, 20, 5)
    ]

    results = rpc_at_once(pyodide_worker, project, "ingest", batches)

    assert all(result == {"accepted": 5, "duplicates": 0, "refused": 0} for result in results)
    for chat, sockets in viewers.items():
        stored = rpc(pyodide_worker, project, "messages", chat, 0, None, 100)
        assert len(stored) == 20
        for viewer in sockets:
            seen = next_messages(viewer, 20)
            assert seen == stored  # each once, in the order stored
            seqs = [message["seq"] for message in seen]
            assert seqs == sorted(set(seqs))
    all_seqs = sorted(
        m["seq"]
        for chat in chats
        for m in rpc(pyodide_worker, project, "messages", chat, 0, None, 100)
    )
    assert all_seqs == list(range(all_seqs[0], all_seqs[0] + 40))  # one sequence, no gaps


def test_a_viewer_resumes_after_n_across_an_eviction(
    pyodide_worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(pyodide_worker, project, user)
    rpc(pyodide_worker, project, "ingest", WORKSPACE, outbox(project, chat, range(1, 6)), NOW)
    stored = rpc(pyodide_worker, project, "messages", chat, 0, None, 10)
    seen_up_to = stored[2]["seq"]

    live = open_viewer(pyodide_worker, project, f"chat={chat}&after={seen_up_to}")
    replayed, last_seq = frames_until_caught_up(live)
    assert replayed == stored[3:]
    assert last_seq == stored[-1]["seq"]

    assert pyodide_worker.evict(BINDING, project)
    rpc(pyodide_worker, project, "ingest", WORKSPACE, outbox(project, chat, range(6, 8)), NOW)
    fresh = rpc(pyodide_worker, project, "messages", chat, last_seq, None, 10)
    assert next_messages(live, 2) == fresh  # the evicted object's viewer is still served

    assert pyodide_worker.evict(BINDING, project)
    resumed = open_viewer(pyodide_worker, project, f"chat={chat}&after={seen_up_to}")
    assert frames_until_caught_up(resumed)[0] == stored[3:] + fresh


def test_a_viewer_only_listens_and_bad_viewer_requests_are_refused(
    pyodide_worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(pyodide_worker, project, user)
    viewer = open_viewer(pyodide_worker, project, f"chat={chat}&after=0")
    frames_until_caught_up(viewer)

    viewer.send("hello?")

    error = viewer.receive_json()
    assert error["type"] == "error" and error["code"] == "viewer_read_only"
    base = f"https://project-data/viewer?project={project}"
    for query, status in [("&chat=c-none", 404), ("&chat=bad%20id", 400), ("&after=-1", 400)]:
        refused = pyodide_worker.open_web_socket(base + query, object=(BINDING, project))
        assert refused.status == status, (query, refused.body)
        assert refused.socket is None
        assert set(refused.json()) == {"error", "message"}


def test_a_frame_over_the_size_cap_is_kept_truncated_and_marked(
    pyodide_worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(pyodide_worker, project, user)
    [big, small] = outbox(project, chat, range(1, 3))
    big["frame"] = agent_frame(1, "x" * (MAX_MESSAGE_BYTES + 10))

    rpc(pyodide_worker, project, "ingest", WORKSPACE, [big, small], NOW)

    cut, whole = rpc(pyodide_worker, project, "messages", chat, 0, None, 10)
    assert cut["truncated"] is True
    assert len(json.dumps(cut["frame"]).encode()) <= MAX_MESSAGE_BYTES
    assert cut["role"] == "assistant"
    assert whole["truncated"] is False
    assert whole["frame"] == small["frame"]


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


def test_a_full_chat_refuses_more_messages(
    pyodide_worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(pyodide_worker, project, user)
    fill_chat(pyodide_worker, project, chat, MAX_CHAT_MESSAGES - 2)

    over = outbox(project, chat, range(1, 6))
    result = rpc(pyodide_worker, project, "ingest", WORKSPACE, over, NOW)
    late = rpc(pyodide_worker, project, "add_message", chat, "m-late", {"type": "run"}, NOW)

    assert result == {"accepted": 2, "duplicates": 0, "refused": 3}
    assert late["error"] == "chat_full"
    assert "new chat" in late["message"]
    assert rpc(pyodide_worker, project, "get_chat", chat)["message_count"] == MAX_CHAT_MESSAGES


def index_row(worker: PyodideWorker, chat: str) -> dict[str, Any]:
    [row] = worker.d1("DATABASE", "SELECT * FROM chats WHERE id = ?", chat)
    return row


def test_the_d1_index_follows_without_a_write_per_message(
    pyodide_worker: PyodideWorker, project: str, user: str
) -> None:
    chat = new_id("c")
    rpc(pyodide_worker, project, "create_chat", chat, user, "indexed", NOW)
    assert index_row(pyodide_worker, chat)["status"] == "starting"
    rpc(pyodide_worker, project, "link", chat, WORKSPACE, SESSION, "r-index", NOW)
    assert index_row(pyodide_worker, chat)["workspace_id"] == WORKSPACE

    rpc(pyodide_worker, project, "ingest", WORKSPACE, outbox(project, chat, range(1, 4)), NOW)
    assert index_row(pyodide_worker, chat)["message_count"] == 0  # not written per message
    assert pyodide_worker.run_alarm(BINDING, project)  # the chat went quiet: the alarm catches up
    assert index_row(pyodide_worker, chat)["message_count"] == 3

    many = outbox(project, chat, range(4, 4 + INDEX_EVERY_MESSAGES))
    rpc(pyodide_worker, project, "ingest", WORKSPACE, many, NOW + 1)
    assert index_row(pyodide_worker, chat)["message_count"] == 3 + INDEX_EVERY_MESSAGES

    rpc(pyodide_worker, project, "set_status", chat, "active", NOW + 2)
    assert index_row(pyodide_worker, chat)["status"] == "active"
    assert rpc(pyodide_worker, project, "delete_chat", chat) is True
    assert pyodide_worker.d1("DATABASE", "SELECT id FROM chats WHERE id = ?", chat) == []


def test_deleting_the_project_closes_its_viewers_and_removes_its_chats(
    pyodide_worker: PyodideWorker, project: str, user: str
) -> None:
    chat = linked_chat(pyodide_worker, project, user)
    project_viewer = open_viewer(pyodide_worker, project, "after=0")
    assert project_viewer.receive_json()["type"] == "caught_up"

    assert rpc(pyodide_worker, project, "delete_project") == 1

    assert project_viewer.receive_json() == {"type": "chat_deleted", "chat_id": chat}
    assert project_viewer.next_event()["type"] == "close"
    assert rpc(pyodide_worker, project, "list_chats") == []


def test_bad_calls_are_refused_with_what_to_do(
    pyodide_worker: PyodideWorker, project: str, user: str
) -> None:
    bad_id = rpc(pyodide_worker, project, "create_chat", "no spaces", user, "t", NOW)
    chat = linked_chat(pyodide_worker, project, user)
    bad_status = rpc(pyodide_worker, project, "set_status", chat, "sleeping", NOW)
    missing = rpc(pyodide_worker, project, "messages", "c-none", 0, None, 10)

    assert bad_id["error"] == "invalid_chat_id"
    assert bad_status["error"] == "invalid_chat_status"
    assert missing["error"] == "chat_not_found"


def test_every_rpc_method_was_called(pyodide_worker: PyodideWorker) -> None:
    pyodide_worker.require_main_module()
    public = {
        name
        for name, member in inspect.getmembers(ProjectData, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in HANDLERS
    }
    assert public, "ProjectData has RPC methods"
    missed = sorted(public - CALLED)
    assert not missed, f"ProjectData RPC methods never called under real Pyodide: {missed}"
