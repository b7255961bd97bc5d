"""What the agent's store keeps for chat-linked sessions and prompt ids: a database made
by an older agent gains the columns with its sessions intact; the frame log keeps frames
the outbox has not delivered past its byte cap (bounded) and lets them go once delivered;
prompt ids are taken once, and waiting prompts come back in order, bounded."""

import sqlite3
from pathlib import Path

from agent.persistence import Store
from agent.sessions.records import MAX_UNDELIVERED_LOG_BYTES
from wire import agent_session as w

CHAT = {"project_id": "proj-1", "chat_id": "chat-1"}
FRAME_TEXT_CHARS = 1000


def add_frames(store: Store, session_id: str, count: int, max_bytes: int) -> None:
    for _ in range(count):
        body = lambda seq: w.PromptFrame(  # noqa: E731
            type="prompt", seq=seq, text="x" * FRAME_TEXT_CHARS
        ).model_dump_json()
        store.append_frame(session_id, body, max_bytes)


def seqs(store: Store, session_id: str) -> list[int]:
    return [seq for seq, _ in store.frames_after(session_id, 0, 1_000_000)]


def test_an_older_agents_database_gains_the_chat_columns(tmp_path: Path) -> None:
    path = tmp_path / "agent.sqlite3"
    with sqlite3.connect(path) as old:
        old.execute(
            "CREATE TABLE agent_sessions (id TEXT PRIMARY KEY, workspace_id TEXT NOT NULL, "
            "agent TEXT NOT NULL, permission_mode TEXT NOT NULL, state TEXT NOT NULL, "
            "acp_session_id TEXT, last_seq INTEGER NOT NULL DEFAULT 0, first_seq INTEGER NOT "
            "NULL DEFAULT 1, log_bytes INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL, "
            "updated_at TEXT NOT NULL)"
        )
        old.execute(
            "CREATE TABLE agent_session_frames (session_id TEXT NOT NULL, seq INTEGER NOT "
            "NULL, body TEXT NOT NULL, PRIMARY KEY (session_id, seq))"
        )
        old.execute(
            "INSERT INTO agent_sessions (id, workspace_id, agent, permission_mode, state, "
            "last_seq, created_at, updated_at) VALUES ('as-old', 'ws-1', 'claude-code', 'ask', "
            "'idle', 1, 't', 't')"
        )
        old.execute("INSERT INTO agent_session_frames VALUES ('as-old', 1, '{}')")
    store = Store(path)
    try:
        record = store.agent_session("as-old")
        assert record is not None
        assert (record["chat"], record["delivered_seq"], record["outbox_stopped"]) == (
            None,
            0,
            None,
        )
        assert store.dated_frames_after("as-old", 0, 10) == [(1, "{}", None)]
        assert store.undelivered_sessions() == []  # not a chat: nothing to send
    finally:
        store.close()


def test_the_log_keeps_undelivered_frames_until_delivered(store: Store) -> None:
    cap = 5 * FRAME_TEXT_CHARS  # about four frames
    store.add_agent_session("as-plain", "ws-1", "claude-code", "ask", "idle")
    store.add_agent_session("as-chat", "ws-1", "claude-code", "ask", "idle", CHAT)
    assert store.agent_session("as-chat")["chat"] == CHAT  # type: ignore[index]
    add_frames(store, "as-plain", 20, cap)
    add_frames(store, "as-chat", 20, cap)
    assert len(seqs(store, "as-plain")) < 6  # trimmed to the cap
    assert seqs(store, "as-chat") == list(range(1, 21))  # none delivered: all kept
    assert [r["id"] for r in store.undelivered_sessions()] == ["as-chat"]

    store.mark_delivered("as-chat", 15)
    store.mark_delivered("as-chat", 3)  # an older answer never moves the cursor back
    assert store.agent_session("as-chat")["delivered_seq"] == 15  # type: ignore[index]
    add_frames(store, "as-chat", 1, cap)
    kept = seqs(store, "as-chat")
    assert kept[-6:] == [16, 17, 18, 19, 20, 21] and kept[0] > 1  # delivered ones went
    assert store.agent_session("as-chat")["first_seq"] == kept[0]  # type: ignore[index]

    store.stop_outbox("as-chat", "chat_not_linked")
    add_frames(store, "as-chat", 1, cap)
    assert len(seqs(store, "as-chat")) < 6  # a stopped outbox holds nothing back
    assert store.undelivered_sessions() == []


def test_undelivered_frames_are_bounded_too(store: Store) -> None:
    store.add_agent_session("as-chat", "ws-1", "claude-code", "ask", "idle", CHAT)
    frame_bytes = len(
        w.PromptFrame(type="prompt", seq=1, text="x" * FRAME_TEXT_CHARS).model_dump_json()
    )
    count = MAX_UNDELIVERED_LOG_BYTES // frame_bytes + 10
    add_frames(store, "as-chat", count, 2 * frame_bytes)
    kept = store.frames_after("as-chat", 0, count)
    assert kept[-1][0] == count and kept[0][0] > 1
    assert sum(len(body) for _, body in kept) <= MAX_UNDELIVERED_LOG_BYTES


def test_prompt_ids_are_taken_once_and_waiting_ones_come_back_in_order(store: Store) -> None:
    store.add_agent_session("as-1", "ws-1", "claude-code", "ask", "prompting")
    assert store.take_prompt("as-1", "p-run", "now", queue=False, max_queued=2) == "run"
    assert store.take_prompt("as-1", "p-run", "now", queue=True, max_queued=2) == "taken"
    assert store.take_prompt("as-1", "p-a", "first", queue=True, max_queued=2) == "queued"
    assert store.take_prompt("as-1", "p-b", "second", queue=True, max_queued=2) == "queued"
    assert store.take_prompt("as-1", "p-c", "third", queue=True, max_queued=2) == "full"
    assert not store.prompt_seen("as-1", "p-c")  # refused: it may be delivered again
    assert store.prompt_seen("as-2", "p-a") is False  # ids are per session
    assert store.next_queued_prompt("as-1") == ("p-a", "first")
    assert store.take_prompt("as-1", "p-c", "third", queue=True, max_queued=2) == "queued"
    assert store.next_queued_prompt("as-1") == ("p-b", "second")
    assert store.next_queued_prompt("as-1") == ("p-c", "third")
    assert store.next_queued_prompt("as-1") is None
    assert store.take_prompt("as-1", "p-a", "first", queue=False, max_queued=2) == "taken"
    store.delete_workspace("ws-1")
    assert not store.prompt_seen("as-1", "p-run")
