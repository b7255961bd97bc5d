"""The ProjectData Durable Object on the local twin, in-process, on an injected clock.

The runtime is the one `sam dev` builds from the real wrangler.toml (D1 with every
migration, the PROJECT_DATA namespace and its alarms) on a ManualClock. Calls go through
the namespace's stubs (arguments and answers cloned as RPC does) and through
worker/projects/chat_data.py, the Worker's client. Covers: the schema's steps (an older
storage brought up to date), one strictly increasing sequence under concurrent ingest with
viewers attached, idempotent batches, a viewer resuming with after=N across an eviction,
truncation and the per-chat cap, the D1 index following (on changes, every N messages, and
by the alarm after T seconds), refusals (a chat of another workspace, another project's
messages, a viewer that talks), and deletion reaching the viewers.
"""

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest

from durable_objects import project_data
from durable_objects.chat_log import TRUNCATED_PREFIX_BYTES
from durable_objects.project_schema import STEPS, migrate
from tests.durable_objects.project_support import (
    Viewer,
    add_project,
    agent_frame,
    new_chat_id,
    outbox,
)
from tests.worker.node_support import add_user, advance
from twin import env as local_env
from twin.storage import DurableObjectStorage
from wire.chat import MAX_BATCH_MESSAGES, MAX_CHAT_MESSAGES, MAX_MESSAGE_BYTES
from worker.deployment import Deployment
from worker.errors import Conflict, Forbidden, InvalidInput, NotFound
from worker.projects import chat_data, store

WORKSPACE = "w1"
SESSION = "s1"


@pytest.fixture
async def user_id(env: Any) -> str:
    return await add_user(env, "alice")


@pytest.fixture
async def project_id(deployment: Deployment, user_id: str) -> str:
    return await add_project(deployment, user_id)


async def linked_chat(
    deployment: Deployment, project_id: str, user_id: str, workspace: str = WORKSPACE
) -> str:
    chat_id = new_chat_id()
    await chat_data.create_chat(deployment, project_id, chat_id, user_id, "Fix the tests")
    await chat_data.link(deployment, project_id, chat_id, workspace, SESSION, "r1")
    return chat_id


async def d1_chat(deployment: Deployment, chat_id: str) -> Any:
    return (
        await deployment.env.DATABASE.prepare("SELECT * FROM chats WHERE id = ?")
        .bind(chat_id)
        .first()
    )


# --- the schema ----------------------------------------------------------------------------


def test_an_older_storage_is_brought_up_to_date_and_keeps_its_rows(tmp_path: Path) -> None:
    scheduled: list[Any] = []
    path = tmp_path / "object.sqlite"
    older = DurableObjectStorage(path, lambda *args: scheduled.append(args))
    assert migrate(older, STEPS) == len(STEPS)
    older.sql.exec("INSERT INTO project (id, project_id, last_seq) VALUES (1, 'p1', 7)")
    older.close()

    extra_step = "ALTER TABLE chats ADD COLUMN pinned INTEGER NOT NULL DEFAULT 0"
    newer = DurableObjectStorage(path, lambda *args: scheduled.append(args))
    assert migrate(newer, (*STEPS, extra_step)) == len(STEPS) + 1
    assert list(newer.sql.exec("SELECT project_id, last_seq FROM project").raw()) == [["p1", 7]]
    assert "pinned" in [row[1] for row in newer.sql.exec("PRAGMA table_info(chats)").raw()]
    # Opened again by the same code: no step runs twice (the ALTER would fail if it did).
    assert migrate(newer, (*STEPS, extra_step)) == len(STEPS) + 1
    with pytest.raises(AssertionError, match="newer than this code"):
        migrate(newer, STEPS)
    newer.close()


async def test_an_object_whose_storage_an_older_step_list_made_serves_calls(
    env: Any, deployment: Deployment, project_id: str, user_id: str
) -> None:
    namespace = env.PROJECT_DATA
    path = namespace.directory / f"{namespace.idFromName(project_id).toString()}.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    empty = DurableObjectStorage(path, lambda *args: None)
    assert migrate(empty, ()) == 0  # a deployment from before any table
    empty.close()
    chat = await chat_data.create_chat(deployment, project_id, new_chat_id(), user_id, "t")
    assert chat["status"] == "starting" and chat["message_count"] == 0


# --- the sequence ----------------------------------------------------------------------------


async def test_concurrent_ingest_keeps_one_increasing_sequence_every_viewer_sees_once(
    env: Any, deployment: Deployment, project_id: str, user_id: str
) -> None:
    chats = [await linked_chat(deployment, project_id, user_id) for _ in range(2)]
    viewers = {
        chat: [await Viewer.open(env, project_id, f"chat={chat}") for _ in range(3)]
        for chat in chats
    }
    project_viewer = await Viewer.open(env, project_id, "")
    batches = [
        outbox(project_id, chat, f"s{n}-{chat}", range(n * 100, n * 100 + 20))
        for n in range(10)
        for chat in chats
    ]
    results = await asyncio.gather(
        *(chat_data.ingest(deployment, project_id, WORKSPACE, batch) for batch in batches)
    )
    assert sum(result["accepted"] for result in results) == 400

    stored = {
        chat: await chat_data.messages(deployment, project_id, chat, 0, None, 500) for chat in chats
    }
    all_seqs = sorted(m["seq"] for chat in chats for m in stored[chat])
    assert all_seqs == list(range(1, 401))  # one sequence across the project, no gap, no repeat
    for chat in chats:
        expected = [m["seq"] for m in stored[chat]]
        assert len(expected) == 200 and expected == sorted(expected)
        for viewer in viewers[chat]:
            await viewer.has_messages(200)
            assert viewer.seqs() == expected  # each once, in order
            assert {m["chat_id"] for m in viewer.messages()} == {chat}
    assert not project_viewer.messages()  # the project's viewers get chat events only


async def test_a_retried_batch_adds_nothing_twice(
    env: Any, deployment: Deployment, project_id: str, user_id: str
) -> None:
    chat = await linked_chat(deployment, project_id, user_id)
    viewer = await Viewer.open(env, project_id, f"chat={chat}")
    batch = outbox(project_id, chat, SESSION, range(1, 6))
    first = await chat_data.ingest(deployment, project_id, WORKSPACE, batch)
    again = await chat_data.ingest(deployment, project_id, WORKSPACE, batch)
    overlapping = await chat_data.ingest(
        deployment, project_id, WORKSPACE, outbox(project_id, chat, SESSION, range(4, 8))
    )
    assert (first["accepted"], first["duplicates"]) == (5, 0)
    assert (again["accepted"], again["duplicates"]) == (0, 5)
    assert (overlapping["accepted"], overlapping["duplicates"]) == (2, 2)
    await viewer.has_messages(7)
    assert [m["frame"]["seq"] for m in viewer.messages()] == list(range(1, 8))
    assert (await chat_data.get_chat(deployment, project_id, chat))["message_count"] == 7


async def test_a_prompt_added_by_the_control_plane_is_not_stored_again_from_the_agent(
    deployment: Deployment, project_id: str, user_id: str
) -> None:
    chat = await linked_chat(deployment, project_id, user_id)
    prompt = {"type": "prompt", "text": "hi", "prompt_id": "q1"}
    added = await chat_data.add_message(deployment, project_id, chat, "prompt:q1", prompt)
    assert added is not None and added["role"] == "user" and added["seq"] == 1
    assert await chat_data.add_message(deployment, project_id, chat, "prompt:q1", prompt) is None
    echo = [
        {
            "id": "prompt:q1",
            "project_id": project_id,
            "chat_id": chat,
            "frame": {**prompt, "seq": 3},
            "created_at": "2026-01-01T00:00:00Z",
        }
    ]
    result = await chat_data.ingest(deployment, project_id, WORKSPACE, echo)
    assert (result["accepted"], result["duplicates"]) == (0, 1)


# --- viewers -----------------------------------------------------------------------------------


async def test_a_viewer_resumes_after_n_across_an_eviction(
    env: Any, deployment: Deployment, project_id: str, user_id: str
) -> None:
    chat = await linked_chat(deployment, project_id, user_id)
    await chat_data.ingest(
        deployment, project_id, WORKSPACE, outbox(project_id, chat, SESSION, range(1, 11))
    )
    first = await Viewer.open(env, project_id, f"chat={chat}&after=0")
    await first.has_messages(10)
    seen = first.seqs()[5]

    namespace = env.PROJECT_DATA
    assert namespace.evict(namespace.idFromName(project_id))  # hibernated: the instance is gone
    await chat_data.ingest(
        deployment, project_id, WORKSPACE, outbox(project_id, chat, SESSION, range(11, 14))
    )
    await first.has_messages(13)  # the socket outlived the instance, and is still served
    assert first.seqs() == sorted(set(first.seqs()))

    resumed = await Viewer.open(env, project_id, f"chat={chat}&after={seen}")
    caught_up = await resumed.caught_up()
    replayed = resumed.seqs()
    assert replayed == first.seqs()[6:]  # exactly what came after `seen`
    assert caught_up["last_seq"] == replayed[-1]
    await chat_data.ingest(
        deployment, project_id, WORKSPACE, outbox(project_id, chat, SESSION, range(14, 15))
    )
    await resumed.has_messages(len(replayed) + 1)
    assert resumed.frames.index(caught_up) == len(replayed)  # replay, caught_up, then live
    assert resumed.seqs() == first.seqs()[6:]


async def test_a_viewer_further_behind_than_a_page_is_told_to_page_the_history(
    env: Any, deployment: Deployment, project_id: str, user_id: str
) -> None:
    from durable_objects.chat_viewers import MAX_REPLAY_MESSAGES

    chat = await linked_chat(deployment, project_id, user_id)
    for start in range(1, MAX_REPLAY_MESSAGES + 2, MAX_BATCH_MESSAGES):
        seqs = range(start, min(start + MAX_BATCH_MESSAGES, MAX_REPLAY_MESSAGES + 2))
        await chat_data.ingest(
            deployment, project_id, WORKSPACE, outbox(project_id, chat, SESSION, seqs)
        )
    viewer = await Viewer.open(env, project_id, f"chat={chat}&after=0")
    error = await viewer.until("an error", lambda v: v.frames and v.frames[0])
    assert error["type"] == "error" and error["code"] == "too_far_behind"
    assert "GET" in error["message"] and not viewer.messages()
    await viewer.until("the close", lambda v: v.closed)


async def test_a_viewer_that_sends_gets_an_error_frame_and_stays_connected(
    env: Any, deployment: Deployment, project_id: str, user_id: str
) -> None:
    chat = await linked_chat(deployment, project_id, user_id)
    viewer = await Viewer.open(env, project_id, f"chat={chat}")
    await viewer.caught_up()
    viewer.socket.send(json.dumps({"type": "prompt", "text": "let me in"}))
    error = await viewer.until(
        "an error", lambda v: next((f for f in v.frames if f["type"] == "error"), None)
    )
    assert error["code"] == "viewer_read_only" and "API" in error["message"]
    await chat_data.add_message(
        deployment,
        project_id,
        chat,
        "m1",
        {"type": "run", "run_id": "r1", "step": "workspace", "status": "started", "detail": None},
    )
    await viewer.has_messages(1)


async def test_chat_events_reach_the_project_and_chat_viewers_and_deletion_closes(
    env: Any, deployment: Deployment, project_id: str, user_id: str
) -> None:
    project_viewer = await Viewer.open(env, project_id, "")
    await project_viewer.caught_up()
    chat = await linked_chat(deployment, project_id, user_id)
    chat_viewer = await Viewer.open(env, project_id, f"chat={chat}")
    await chat_data.set_status(deployment, project_id, chat, "active")
    events = await project_viewer.until(
        "3 chat events", lambda v: [f for f in v.frames if f["type"] == "chat"][2:] and v.frames
    )
    statuses = [f["chat"]["status"] for f in events if f["type"] == "chat"]
    assert statuses == ["starting", "starting", "active"]  # created, linked, active
    await chat_viewer.until("its chat event", lambda v: any(f["type"] == "chat" for f in v.frames))

    assert await chat_data.delete_chat(deployment, project_id, chat)
    await project_viewer.until("chat_deleted", lambda v: v.frames[-1]["type"] == "chat_deleted")
    code = await chat_viewer.until("the close", lambda v: v.closed)
    assert code[0] == 4404
    assert await d1_chat(deployment, chat) is None
    with pytest.raises(NotFound):
        await chat_data.get_chat(deployment, project_id, chat)


# --- bounds ------------------------------------------------------------------------------------


async def test_a_frame_over_the_size_cap_is_kept_truncated_and_marked(
    deployment: Deployment, project_id: str, user_id: str
) -> None:
    chat = await linked_chat(deployment, project_id, user_id)
    huge = outbox(project_id, chat, SESSION, range(1, 2), text="x" * MAX_MESSAGE_BYTES)
    small = outbox(project_id, chat, SESSION, range(2, 3))
    await chat_data.ingest(deployment, project_id, WORKSPACE, huge + small)
    cut, whole = await chat_data.messages(deployment, project_id, chat, 0, None, 10)
    assert cut["truncated"] and not whole["truncated"]
    assert cut["frame"]["type"] == "update" and cut["frame"]["seq"] == 1
    assert cut["frame"]["prefix"].startswith('{"type":"update"')
    assert len(cut["frame"]["prefix"].encode()) <= TRUNCATED_PREFIX_BYTES
    assert len(json.dumps(cut["frame"]).encode()) <= MAX_MESSAGE_BYTES
    assert cut["role"] == "assistant"  # judged on the whole frame
    assert whole["frame"] == agent_frame(2, "hi 2")


async def test_a_full_chat_refuses_more_messages(
    deployment: Deployment, project_id: str, user_id: str
) -> None:
    chat = await linked_chat(deployment, project_id, user_id)
    for start in range(0, MAX_CHAT_MESSAGES, MAX_BATCH_MESSAGES):
        batch = outbox(project_id, chat, SESSION, range(start, start + MAX_BATCH_MESSAGES))
        await chat_data.ingest(deployment, project_id, WORKSPACE, batch)
    over = outbox(project_id, chat, SESSION, range(MAX_CHAT_MESSAGES, MAX_CHAT_MESSAGES + 3))
    result = await chat_data.ingest(deployment, project_id, WORKSPACE, over)
    assert result == {"accepted": 0, "duplicates": 0, "refused": 3}
    with pytest.raises(Conflict) as refused:
        await chat_data.add_message(deployment, project_id, chat, "m-late", {"type": "run"})
    assert refused.value.code == "chat_full" and "new chat" in refused.value.message
    info = await chat_data.get_chat(deployment, project_id, chat)
    assert info["message_count"] == MAX_CHAT_MESSAGES


# --- the D1 index ------------------------------------------------------------------------------


async def test_the_d1_index_follows_without_a_write_per_message(
    runtime: local_env.Runtime, deployment: Deployment, project_id: str, user_id: str
) -> None:
    chat = new_chat_id()
    await chat_data.create_chat(deployment, project_id, chat, user_id, "  Fix\nthe   tests ")
    row = await d1_chat(deployment, chat)
    assert (row["status"], row["topic"], row["message_count"]) == ("starting", "Fix the tests", 0)
    await chat_data.link(deployment, project_id, chat, WORKSPACE, SESSION, "r1")
    assert (await d1_chat(deployment, chat))["workspace_id"] == WORKSPACE

    every = project_data.INDEX_EVERY_MESSAGES
    await chat_data.ingest(
        deployment, project_id, WORKSPACE, outbox(project_id, chat, SESSION, range(every - 1))
    )
    assert (await d1_chat(deployment, chat))["message_count"] == 0  # not yet: fewer than N
    await chat_data.ingest(
        deployment,
        project_id,
        WORKSPACE,
        outbox(project_id, chat, SESSION, range(every - 1, every)),
    )
    assert (await d1_chat(deployment, chat))["message_count"] == every  # the Nth brings it

    await chat_data.ingest(
        deployment,
        project_id,
        WORKSPACE,
        outbox(project_id, chat, SESSION, range(every, every + 2)),
    )
    assert (await d1_chat(deployment, chat))["message_count"] == every
    await advance(runtime, project_data.INDEX_EVERY_SECONDS)  # the chat went quiet: the alarm
    row = await d1_chat(deployment, chat)
    assert (row["message_count"], row["last_seq"]) == (every + 2, every + 2)

    await chat_data.set_status(deployment, project_id, chat, "stopped")
    assert (await d1_chat(deployment, chat))["status"] == "stopped"
    listed = await store.chats_for(deployment, user_id)
    assert [c["id"] for c in listed] == [chat]


# --- refusals ----------------------------------------------------------------------------------


async def test_a_workspace_writes_only_to_its_own_chats(
    deployment: Deployment, project_id: str, user_id: str
) -> None:
    mine = await linked_chat(deployment, project_id, user_id, workspace="w-mine")
    theirs = await linked_chat(deployment, project_id, user_id, workspace="w-theirs")
    unlinked = new_chat_id()
    await chat_data.create_chat(deployment, project_id, unlinked, user_id, "t")
    mixed = outbox(project_id, mine, SESSION, range(2)) + outbox(
        project_id, theirs, SESSION, range(2, 3)
    )
    for batch in (
        mixed,
        outbox(project_id, unlinked, SESSION, range(1)),
        outbox("p-other", mine, SESSION, range(1)),
    ):
        with pytest.raises(Forbidden) as refused:
            await chat_data.ingest(deployment, project_id, "w-mine", batch)
        assert refused.value.code == "chat_not_linked"
    # All or nothing: the first two of the mixed batch were not kept either.
    assert (await chat_data.get_chat(deployment, project_id, mine))["message_count"] == 0


async def test_bad_calls_are_refused_with_what_to_do(
    deployment: Deployment, project_id: str, user_id: str
) -> None:
    with pytest.raises(InvalidInput):
        await chat_data.create_chat(deployment, project_id, "no spaces allowed", user_id, "t")
    with pytest.raises(NotFound):
        await chat_data.link(deployment, project_id, "c-missing", WORKSPACE, SESSION, "r1")
    with pytest.raises(NotFound):
        await chat_data.messages(deployment, project_id, "c-missing", 0, None, 10)
    chat = await linked_chat(deployment, project_id, user_id)
    with pytest.raises(InvalidInput):
        await chat_data.set_status(deployment, project_id, chat, "sleeping")
    with pytest.raises(InvalidInput):
        await chat_data.add_message(deployment, project_id, chat, "no spaces", {"type": "run"})
    assert (await chat_data.get_chat(deployment, project_id, chat))["message_count"] == 0
    await chat_data.set_status(deployment, project_id, chat, "active")
    # Every status may follow every other but itself (a no-op): nothing else to refuse.
    assert (await chat_data.set_status(deployment, project_id, chat, "active"))[
        "status"
    ] == "active"


async def test_pages_of_history_newest_first_then_older(
    deployment: Deployment, project_id: str, user_id: str
) -> None:
    chat = await linked_chat(deployment, project_id, user_id)
    await chat_data.ingest(
        deployment, project_id, WORKSPACE, outbox(project_id, chat, SESSION, range(1, 26))
    )
    last = await chat_data.messages(deployment, project_id, chat, None, None, 10)
    assert [m["seq"] for m in last] == list(range(16, 26))
    older = await chat_data.messages(deployment, project_id, chat, None, last[0]["seq"], 10)
    assert [m["seq"] for m in older] == list(range(6, 16))
    after = await chat_data.messages(deployment, project_id, chat, 20, None, 3)
    assert [m["seq"] for m in after] == [21, 22, 23]


async def test_deleting_the_project_removes_its_chats(
    env: Any, deployment: Deployment, project_id: str, user_id: str
) -> None:
    chat = await linked_chat(deployment, project_id, user_id)
    await chat_data.ingest(
        deployment, project_id, WORKSPACE, outbox(project_id, chat, SESSION, range(3))
    )
    project_viewer = await Viewer.open(env, project_id, "")
    assert await chat_data.delete_project(deployment, project_id) == 1
    assert await chat_data.list_chats(deployment, project_id) == []
    await project_viewer.until(
        "chat_deleted", lambda v: any(f["type"] == "chat_deleted" for f in v.frames)
    )
    await project_viewer.until("the close", lambda v: v.closed)
