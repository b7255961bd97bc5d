"""The chat outbox of a real node agent, against the control plane double's ingest route
(which parses each batch as the real route does and takes each message id once), with
the stand-in ACP agent in a real workspace container: a chat-linked session's frames
arrive in order, each once; eagerly (a slow trickle is one POST per frame) and in batches
while a POST is in flight; later, in order, after the control plane was down; after the
node agent was killed with SIGKILL mid-stream (and a prompt queued before the kill still
runs); a chat the control plane refuses stops that outbox without a hot loop; a frame too
large for a batch goes as a marked, truncated copy."""

import json
from pathlib import Path
from typing import Any

import pytest

from tests.agent.conftest import AgentFactory
from tests.agent.sessions.stand_in_node import Sessions, delete_workspace, start_node
from tests.support.control_plane import Callback, ControlPlaneDouble
from tests.support.wait import wait_for
from wire.chat import MAX_BATCH_BYTES, MAX_BATCH_MESSAGES, MAX_MESSAGE_BYTES, MessageBatch

pytestmark = pytest.mark.timeout(400)

CHAT_ID = "chat-outbox"
CHAT = {"project_id": "proj-1", "chat_id": CHAT_ID}
DELIVERY_SECONDS = 60.0
FAST_RETRIES = {"SAM_OUTBOX_RETRY_MAX_SECONDS": "0.5"}


def expected_ids(session_id: str, frames: list[dict[str, Any]]) -> list[str]:
    return [
        f"prompt:{f['prompt_id']}"
        if f["type"] == "prompt" and f.get("prompt_id")
        else f"{session_id}:{f['seq']}"
        for f in frames
    ]


def delivered(
    control_plane: ControlPlaneDouble, sessions: Sessions, session_id: str
) -> list[dict[str, Any]]:
    """Once the double holds every frame the session has now: its messages (else [])."""
    last_seq = sessions.info(session_id)["last_seq"]
    messages = control_plane.messages_of(CHAT_ID)
    return messages if messages and messages[-1]["frame"]["seq"] >= last_seq else []


def assert_in_order_once(
    control_plane: ControlPlaneDouble, sessions: Sessions, session_id: str, resent: int = 0
) -> list[dict[str, Any]]:
    """Every frame a viewer sees arrived once, in order, as the viewer saw it; at most
    `resent` messages the control plane had accepted were sent again."""
    messages = wait_for(
        lambda: delivered(control_plane, sessions, session_id), "every frame", DELIVERY_SECONDS
    )
    frames = sessions.frames(session_id)
    assert [m["id"] for m in messages] == expected_ids(session_id, frames)
    assert [m["frame"] for m in messages] == frames
    assert {(m["project_id"], m["chat_id"]) for m in messages} == {("proj-1", CHAT_ID)}
    accepted = [m["id"] for c in posts(control_plane, 200) for m in c.body["messages"]]
    assert len(accepted) - len(set(accepted)) <= resent
    return messages


def posts(control_plane: ControlPlaneDouble, status: int | None = None) -> list[Callback]:
    found = control_plane.callbacks("chat-messages")
    return [c for c in found if status is None or c.status == status]


def turn_ended(count: int) -> Any:
    return lambda frames: sum(f["type"] == "turn_ended" for f in frames) >= count


def ran(prompt_id: str) -> Any:
    """The frames, once the turn of that prompt has ended."""

    def check(frames: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        began = [i for i, f in enumerate(frames) if f.get("prompt_id") == prompt_id]
        ended = began and any(f["type"] == "turn_ended" for f in frames[began[0] :])
        return frames if ended else None

    return check


def test_frames_go_eagerly_one_by_one_and_in_batches_under_load(
    agent_factory: AgentFactory, control_plane: ControlPlaneDouble, tmp_path: Path
) -> None:
    agent, workspace_id = start_node(agent_factory, control_plane, tmp_path)
    control_plane.link_chat(CHAT_ID, workspace_id)
    sessions = Sessions(agent, workspace_id)
    try:
        created = sessions.create(id="as-out-1", chat=CHAT)
        assert created.status_code == 201, created.text
        # A slow trickle (an update a second): each goes out alone, at once (no batch timer).
        trickle = 5
        assert (
            sessions.prompt("as-out-1", f"updates {trickle} 1000", "p-trickle").status_code == 202
        )
        sessions.until("as-out-1", "the trickle", turn_ended(1))
        assert_in_order_once(control_plane, sessions, "as-out-1")
        with_updates = [
            c
            for c in posts(control_plane, 200)
            if any(m["frame"]["type"] == "update" for m in c.body["messages"])
        ]
        assert len(with_updates) == trickle
        assert all(len(c.body["messages"]) == 1 for c in with_updates), [
            [(m["frame"]["type"], m["frame"]["seq"]) for m in c.body["messages"]]
            for c in posts(control_plane)
        ]

        # A slow control plane and a burst: the first goes alone, the rest wait in batches.
        control_plane.ingest_delay_seconds = 0.5
        before = len(posts(control_plane))
        burst = 3 * MAX_BATCH_MESSAGES
        assert sessions.prompt("as-out-1", f"updates {burst}", "p-burst").status_code == 202
        sessions.until("as-out-1", "the burst", turn_ended(2))
        assert_in_order_once(control_plane, sessions, "as-out-1")
        sizes = [len(c.body["messages"]) for c in posts(control_plane)[before:]]
        assert sizes[0] == 1  # the prompt frame, sent the moment it was stored
        assert max(sizes) == MAX_BATCH_MESSAGES and len(sizes) < burst / 10
        for call in posts(control_plane):
            MessageBatch.model_validate(call.body)  # what the real route parses
            assert call.token == control_plane_token(agent)

        # Deleting the workspace waits for the chat's last frame before its frames go.
        control_plane.ingest_delay_seconds = 0.0
        delete_workspace(agent, workspace_id)
        last = control_plane.messages_of(CHAT_ID)[-1]["frame"]
        assert (last["type"], last["reason"]) == ("stopped", "workspace_stopped")
    finally:
        sessions.client.close()
        with agent.client() as client:  # when the test failed before its own delete
            client.delete(f"/workspaces/{workspace_id}")


def control_plane_token(agent: Any) -> str:
    return agent.token_file.read_text().strip()


def test_the_control_plane_down_then_back_gets_everything_in_order_once(
    agent_factory: AgentFactory, control_plane: ControlPlaneDouble, tmp_path: Path
) -> None:
    agent, workspace_id = start_node(agent_factory, control_plane, tmp_path, FAST_RETRIES)
    control_plane.link_chat(CHAT_ID, workspace_id)
    sessions = Sessions(agent, workspace_id)
    try:
        control_plane.unavailable.add("chat-messages")
        created = sessions.create(id="as-out-2", chat=CHAT, prompt="updates 30", prompt_id="p-1")
        assert created.status_code == 201, created.text
        sessions.until("as-out-2", "the turn", turn_ended(1))
        control_plane.wait_for("chat-messages", count=3, where=lambda c: c.status == 503)
        assert control_plane.messages_of(CHAT_ID) == []
        assert "chat_outbox.send_failed" in agent.log()
        control_plane.unavailable.clear()
        messages = assert_in_order_once(control_plane, sessions, "as-out-2")
        assert messages[1]["id"] == "prompt:p-1"  # the control plane's own id for the prompt
    finally:
        sessions.client.close()
        delete_workspace(agent, workspace_id)


def test_after_a_sigkill_mid_stream_the_rest_arrives_once_and_queued_prompts_run(
    agent_factory: AgentFactory, control_plane: ControlPlaneDouble, tmp_path: Path
) -> None:
    agent, workspace_id = start_node(agent_factory, control_plane, tmp_path, FAST_RETRIES)
    control_plane.link_chat(CHAT_ID, workspace_id)
    sessions = Sessions(agent, workspace_id)
    try:
        control_plane.ingest_delay_seconds = 0.2
        created = sessions.create(id="as-out-3", chat=CHAT, prompt="updates 400 5", prompt_id="p-1")
        assert created.status_code == 201, created.text
        assert sessions.prompt("as-out-3", "after the restart", "p-2").status_code == 202
        wait_for(lambda: len(control_plane.messages_of(CHAT_ID)) >= 20, "a part", 30.0)
        agent.kill()
        sent_before = len(control_plane.messages_of(CHAT_ID))
        agent.start()
        assert sessions.prompt("as-out-3", "after the restart", "p-2").status_code == 200
        frames = sessions.until("as-out-3", "the queued prompt's turn", ran("p-2"))
        kinds = [f["type"] for f in frames]
        assert "restarting" in kinds and "resumed" in kinds
        # Only the batch in flight at the kill may come again (its answer was lost).
        messages = assert_in_order_once(control_plane, sessions, "as-out-3", MAX_BATCH_MESSAGES)
        assert len(messages) > sent_before
        assert [m["id"] for m in messages].count("prompt:p-2") == 1
    finally:
        sessions.client.close()
        delete_workspace(agent, workspace_id)


def test_a_refused_chat_stops_its_outbox_and_a_frame_too_large_goes_truncated(
    agent_factory: AgentFactory, control_plane: ControlPlaneDouble, tmp_path: Path
) -> None:
    agent, workspace_id = start_node(agent_factory, control_plane, tmp_path, FAST_RETRIES)
    sessions = Sessions(agent, workspace_id)
    try:
        # Not linked to this workspace: refused for good, logged once, not sent again.
        unlinked = {"project_id": "proj-1", "chat_id": "chat-elsewhere"}
        assert sessions.create(id="as-out-4", chat=unlinked, prompt="hi").status_code == 201
        sessions.until("as-out-4", "the turn", turn_ended(1))
        assert sessions.prompt("as-out-4", "again").status_code == 202
        sessions.until("as-out-4", "the second turn", turn_ended(2))
        refused = posts(control_plane, 403)
        assert len(refused) == 1 and posts(control_plane) == refused
        assert agent.log().count("chat_outbox.stopped") == 1

        # One frame over the batch's bytes: a marked prefix; one over a message's: as is.
        control_plane.link_chat(CHAT_ID, workspace_id)
        assert sessions.create(id="as-out-5", chat=CHAT).status_code == 201
        big, large = MAX_BATCH_BYTES + 1000, MAX_MESSAGE_BYTES + 1000
        assert sessions.prompt("as-out-5", f"big {big}").status_code == 202
        sessions.until("as-out-5", "the big turn", turn_ended(1))
        assert sessions.prompt("as-out-5", f"big {large}").status_code == 202
        sessions.until("as-out-5", "the large turn", turn_ended(2))
        messages = wait_for(
            lambda: delivered(control_plane, sessions, "as-out-5"), "every frame", DELIVERY_SECONDS
        )
        updates = [m["frame"] for m in messages if "update" in m["frame"]]
        cut = [m["frame"] for m in messages if m["frame"].get("truncated")]
        assert len(cut) == 1 and cut[0]["type"] == "update"
        assert len(cut[0]["prefix"].encode()) <= MAX_MESSAGE_BYTES
        assert cut[0]["prefix"].startswith(f'{{"seq":{cut[0]["seq"]},"type":"update"')
        frames = sessions.frames("as-out-5")
        assert [m["id"] for m in messages] == expected_ids("as-out-5", frames)
        assert [m["frame"] for m in messages if m["frame"] is not cut[0]] == [
            f for f in frames if f["seq"] != cut[0]["seq"]
        ]
        [whole] = updates
        assert len(whole["update"]["content"]["text"]) == large
        assert all(
            len(json.dumps(c.body).encode()) <= MAX_BATCH_BYTES for c in posts(control_plane)
        )
    finally:
        sessions.client.close()
        delete_workspace(agent, workspace_id)
