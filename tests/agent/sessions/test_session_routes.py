"""The agent-session routes the control plane's TaskRunner calls, on a real node agent
with the stand-in ACP agent in a real workspace container: a session created with an id
is created once however often the call is delivered (another workspace cannot take the
id); a prompt with an id is taken once, waits for a running turn in a bounded queue and
runs when the turn ends; a permission request is answered over HTTP by the same broker
as a viewer's answer, and bad answers are refused with what to do next."""

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agent.sessions.session import MAX_QUEUED_PROMPTS
from tests.agent.conftest import AgentFactory
from tests.agent.sessions.stand_in_node import Sessions, delete_workspace, start_node
from tests.support.control_plane import ControlPlaneDouble

pytestmark = pytest.mark.timeout(400)

CHAT = {"project_id": "proj-1", "chat_id": "chat-1"}


def prompts(frames: list[dict[str, Any]]) -> list[tuple[str | None, str]]:
    return [(f["prompt_id"], f["text"]) for f in frames if f["type"] == "prompt"]


def assert_error(answer: Any, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["error"] == code and answer.json()["message"]


def test_ids_make_creates_and_prompts_idempotent_and_permissions_answer_over_http(
    agent_factory: AgentFactory, control_plane: ControlPlaneDouble, tmp_path: Path
) -> None:
    agent, workspace_id = start_node(agent_factory, control_plane, tmp_path)
    sessions = Sessions(agent, workspace_id)
    try:
        # --- the same create twice: one session, the second answered as it is ------------
        body = {"id": "as-chat-1", "prompt": "hello", "prompt_id": "p-1", "chat": CHAT}
        first = sessions.create(**body)
        assert first.status_code == 201, first.text
        assert first.json()["id"] == "as-chat-1"
        sessions.until("as-chat-1", "the first turn", lambda f: f[-1]["type"] == "turn_ended")
        again = sessions.create(**body)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == "as-chat-1" and again.json()["state"] == "idle"
        listed = sessions.client.get(sessions.base).json()["sessions"]
        assert [s["id"] for s in listed] == ["as-chat-1"]
        assert prompts(sessions.frames("as-chat-1")) == [("p-1", "hello")]
        # a malformed id is a 400 naming the field
        bad = sessions.create(id="not an id!")
        assert_error(bad, 400, "bad_request")
        assert "id" in bad.json()["message"]

        # --- a prompt id taken once ---------------------------------------------------------
        repeated = sessions.prompt("as-chat-1", "hello", "p-1")
        assert repeated.status_code == 200, repeated.text
        assert prompts(sessions.frames("as-chat-1")) == [("p-1", "hello")]

        # --- a turn waiting for a permission answer; prompts with ids queue behind it ------
        assert sessions.prompt("as-chat-1", "ask", "p-ask").status_code == 202
        request = sessions.until(
            "as-chat-1",
            "a permission request",
            lambda f: next((x for x in f if x["type"] == "permission_request"), None),
        )
        queued = [f"q-{i}" for i in range(MAX_QUEUED_PROMPTS)]
        for prompt_id in queued:
            answer = sessions.prompt("as-chat-1", f"echo {prompt_id}", prompt_id)
            assert answer.status_code == 202, answer.text
            assert answer.json()["state"] == "prompting"
        assert sessions.prompt("as-chat-1", "echo q-0", "q-0").status_code == 200
        assert_error(sessions.prompt("as-chat-1", "one too many", "q-x"), 409, "agent_session_busy")
        assert_error(sessions.prompt("as-chat-1", "no id"), 409, "agent_session_busy")

        # --- the permission route: bad answers first ----------------------------------------
        request_id = request["request_id"]
        assert_error(
            sessions.answer("as-chat-1", "perm-999", {"option_id": "allow"}),
            404,
            "permission_request_not_found",
        )
        not_offered = sessions.answer("as-chat-1", request_id, {"option_id": "maybe"})
        assert_error(not_offered, 400, "bad_request")
        assert "allow" in not_offered.json()["message"]  # names the options offered
        assert_error(sessions.answer("as-chat-1", request_id, {}), 400, "bad_request")
        assert_error(
            sessions.answer("as-chat-1", request_id, {"option_id": "allow", "x": 1}),
            400,
            "bad_request",
        )
        assert_error(
            sessions.answer("as-nobody", request_id, {"option_id": "allow"}),
            404,
            "agent_session_not_found",
        )
        answered = sessions.answer("as-chat-1", request_id, {"option_id": "allow"})
        assert answered.status_code == 200, answered.text
        late = sessions.answer("as-chat-1", request_id, {"option_id": "deny"})
        assert_error(late, 404, "permission_request_not_found")  # the first answer won

        # --- the queue runs in order, each prompt once, after the turn ----------------------
        done = sessions.until(
            "as-chat-1",
            "the queued turns",
            lambda f: (
                f if sum(x["type"] == "turn_ended" for x in f) == 2 + MAX_QUEUED_PROMPTS else None
            ),
        )
        resolved = next(f for f in done if f["type"] == "permission_resolved")
        assert (resolved["option_id"], resolved["by"]) == ("allow", "viewer")
        assert prompts(done) == [
            ("p-1", "hello"),
            ("p-ask", "ask"),
            *((prompt_id, f"echo {prompt_id}") for prompt_id in queued),
        ]
        kinds = [f["type"] for f in done]
        assert kinds[-3:] == ["prompt", "update", "turn_ended"]
        assert sessions.info("as-chat-1")["state"] == "idle"
        # a queued id, now taken, is still taken
        assert sessions.prompt("as-chat-1", "echo q-3", "q-3").status_code == 200

        # --- the same create delivered twice at once: one session, one adapter -------------
        def create_twice(_: str) -> Any:
            caller = Sessions(agent, workspace_id)  # a client of its own per thread
            try:
                return caller.create(id="as-twice")
            finally:
                caller.client.close()

        with ThreadPoolExecutor(2) as pool:
            both = list(pool.map(create_twice, "ab"))
        assert sorted(a.status_code for a in both) == [200, 201], [a.text for a in both]
        assert {a.json()["id"] for a in both} == {"as-twice"}
        started = [f for f in sessions.frames("as-twice") if f["type"] == "started"]
        assert len(started) == 1
        listed = sessions.client.get(sessions.base).json()["sessions"]
        assert sorted(s["id"] for s in listed) == ["as-chat-1", "as-twice"]

        # --- another workspace cannot take the id --------------------------------------------
        repository = str(tmp_path / "stand-in-repo")
        other = sessions.client.post(
            "/workspaces", json={"id": "ws-other", "repository": repository}
        )
        assert other.status_code == 202, other.text
        taken = sessions.client.post(
            "/workspaces/ws-other/agent-sessions", json={"id": "as-chat-1", "agent": "stand-in"}
        )
        assert_error(taken, 409, "agent_session_id_taken")
        delete_workspace(agent, "ws-other")
    finally:
        sessions.client.close()
        delete_workspace(agent, workspace_id)
