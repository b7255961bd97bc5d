"""The chat flow end to end on the real edge (its TaskRunner and ProjectData objects, D1),
a real node agent (docker backend, Docker Engine, the offline base image) and the stand-in
ACP agent (tests/agent/sessions/stand_in_agent.mjs) as the project's agent type, for speed.

The node agent is started by the test (tests/support/agent.py), trusting the edge's signing
keys, its heartbeats and callbacks going to a control-plane double; its node row is written
into the edge's D1 file as alice's running local node, so the run's workspace step places
the workspace on it (workspaces.service → claim → the agent's POST /workspaces) and its
workspace_ready step sees it running by asking the agent. The project row is written into
D1 the same way. What the user sees is read through the API (the run) and D1's chat index;
what reached the agent, through the agent's own session routes.

Covers: a new chat reaching active with the agent session it chose and its first prompt; a
follow-up accepted while the node agent is down, delivered once when it is back; a
permission answer reaching the agent; stop; a workspace deleted through the API stopping
its chat, and the next message starting a fresh run whose agent gets the conversation; an
agent that exits at start failing the run (not an active chat) with its stderr's words;
the edge killed (-9) with the agent-session and link steps' results rolled back in the
run's storage: after its restart the alarm runs them again, and the agent still has one
session that took its first prompt once.
"""

import asyncio
import json
import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from agent.sessions.tools import NODE
from devtools.local_nodes import agent_hostname
from durable_objects.task_runner import TaskRunner
from tests.fixtures.repos import make_repo
from tests.support.agent import AgentProcess, start_agent
from tests.support.agent_tls import edge_ca, local_node_client, trusting
from tests.support.container_tools import require_container_tools
from tests.support.control_plane import ControlPlaneDouble
from tests.support.docker_objects import remove_labelled
from tests.support.edge import Edge, crashed_and_restarted, running_edge
from tests.support.edge_tokens import EdgeSigner
from tests.support.wait import wait_for
from tests.worker.edge.test_proxy import (
    Member,
    agent_env_for,
    as_member,
    database,
    insert_node,
    sign_in,
)
from twin.alarms import AlarmScheduler
from twin.clock import SystemClock
from twin.durable_objects import DurableObjectNamespace
from twin.storage import DurableObjectStorage
from worker.api.ratelimit import LIMITS

STAND_IN_SCRIPT = Path(__file__).parents[2] / "agent" / "sessions" / "stand_in_agent.mjs"
STAND_IN = "stand-in"
# The same stand-in made to exit at start: STAND_IN_STARTS counts its starts and refuses
# every one after the first, and a start is counted before it runs.
STAND_IN_EXITS = "stand-in-exits"
_EXITS = "echo start > /tmp/stand-in-starts && STAND_IN_STARTS=/tmp/stand-in-starts exec"
AGENT_COMMANDS = json.dumps(
    {
        STAND_IN: [str(NODE), STAND_IN_SCRIPT.name],
        STAND_IN_EXITS: ["/bin/sh", "-c", f"{_EXITS} {NODE} {STAND_IN_SCRIPT.name}"],
    }
)
ACTIVE_TIMEOUT_SECONDS = 180.0  # a clone and a devcontainer, then the adapter
DELIVERY_TIMEOUT_SECONDS = 90.0  # the run's retries back off to 30 s
FRAME_TIMEOUT_SECONDS = 30.0

pytestmark = pytest.mark.timeout(900)


@dataclass
class Stage:
    edge: Edge
    signer: EdgeSigner
    alice: Member
    mallory: Member
    node: str
    agent: AgentProcess
    project: str
    client: httpx.Client  # the API as alice
    edges: ExitStack  # every edge process this stage started, stopped at its end
    variables: dict[str, str]

    def crash_edge(self, while_down: Callable[[], None]) -> None:
        self.edge = crashed_and_restarted(self.edge, self.edges, self.variables, while_down)

    def chats(self, rest: str = "") -> str:
        return f"/api/projects/{self.project}/chats{rest}"

    def run(self, chat_id: str) -> dict[str, Any]:
        answer = self.client.get(self.chats(f"/{chat_id}/run"))
        assert answer.status_code == 200, answer.text
        return answer.json()

    def until_run(self, chat_id: str, what: str, check: Any, timeout: float) -> dict[str, Any]:
        def look() -> dict[str, Any] | None:
            run = self.run(chat_id)
            assert run["status"] != "failed", run
            return run if check(run) else None

        return wait_for(look, what, timeout)

    def messages(self, chat_id: str) -> list[dict[str, Any]]:
        """The chat's history, as the project page reads it (ProjectData, through the API)."""
        answer = self.client.get(self.chats(f"/{chat_id}/messages"), params={"after": 0})
        assert answer.status_code == 200, answer.text
        return answer.json()["messages"]

    def chat_row(self, chat_id: str) -> dict[str, Any]:
        """The chat as D1's index has it (ProjectData writes it on every change)."""
        with closing(database(self.edge)) as db:
            db.row_factory = lambda cursor, row: {
                c[0]: v for c, v in zip(cursor.description, row, strict=True)
            }
            return db.execute("SELECT * FROM chats WHERE id = ?", (chat_id,)).fetchone()

    def agent_client(self) -> httpx.Client:
        token = asyncio.run(self.signer.agent(self.node))
        return local_node_client(
            self.edge.data_dir,
            self.node,
            self.agent.port,
            headers=self.agent.auth(token),
            timeout=FRAME_TIMEOUT_SECONDS,
        )

    def session(self, run: dict[str, Any]) -> dict[str, Any]:
        path = f"/workspaces/{run['workspace_id']}/agent-sessions/{run['agent_session_id']}"
        with self.agent_client() as client:
            answer = client.get(path)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def frames(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        """The session's frames so far, as a viewer connecting to the node agent gets them."""
        last_seq = self.session(run)["last_seq"]
        path = f"/workspaces/{run['workspace_id']}/agent-sessions/{run['agent_session_id']}/ws"
        token = asyncio.run(self.signer.agent(self.node))
        received: list[dict[str, Any]] = []
        with connect(
            f"wss://127.0.0.1:{self.agent.port}{path}?after=0",
            additional_headers={"Authorization": f"Bearer {token}"},
            ssl=trusting(edge_ca(self.edge.data_dir)),
            server_hostname=agent_hostname(self.node),
        ) as ws:
            while last_seq and (not received or received[-1].get("seq", 0) < last_seq):
                received.append(json.loads(ws.recv(timeout=FRAME_TIMEOUT_SECONDS)))
        return received

    def prompts(self, run: dict[str, Any]) -> list[dict[str, Any]]:
        return [frame for frame in self.frames(run) if frame["type"] == "prompt"]


def insert_project(edge: Edge, user_id: str, repository: Path) -> str:
    project_id = "p" + secrets.token_hex(16)
    with closing(database(edge)) as db:
        db.execute(
            "INSERT INTO projects (id, user_id, name, repository, default_branch, provider, "
            "node_size, agent, permission_mode, created_at, updated_at) "
            "VALUES (?, ?, 'stand-in', ?, NULL, 'local', NULL, ?, 'ask', ?, ?)",
            (project_id, user_id, str(repository), STAND_IN, "2026-01-01", "2026-01-01"),
        )
        db.commit()
    return project_id


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    require_container_tools()
    base = tmp_path_factory.mktemp("chat-flow")
    variables = {"SAM_RATE_LIMITS": ",".join(f"{name}=100000/60" for name in LIMITS)}
    repo = make_repo(base, "repo", files={STAND_IN_SCRIPT.name: STAND_IN_SCRIPT.read_text()})
    node_id = "n" + secrets.token_hex(8)
    with ExitStack() as edges, ControlPlaneDouble(node_id=node_id) as heartbeats:
        edge = edges.enter_context(running_edge(base / ".sam", vars=variables))
        signer = EdgeSigner(edge.data_dir, edge.domain)
        env = agent_env_for(edge, signer, node_id, base) | {"SAM_AGENT_COMMANDS": AGENT_COMMANDS}
        agent = start_agent(heartbeats, base / "agent-state", extra_env=env)
        try:
            alice = sign_in(edge, "alice")  # the first to sign in: may name local paths
            mallory = sign_in(edge, "mallory")
            insert_node(edge, alice.id, agent.port, node_id)
            with as_member(edge, alice) as client:
                stage = Stage(
                    edge=edge,
                    signer=signer,
                    alice=alice,
                    mallory=mallory,
                    node=node_id,
                    agent=agent,
                    project=insert_project(edge, alice.id, repo),
                    client=client,
                    edges=edges,
                    variables=variables,
                )
                yield stage
                edge = stage.edge  # the one running now, if a test restarted it
        finally:
            if not agent.running:
                agent.start()
            with closing(database(edge)) as db:
                made = [row[0] for row in db.execute("SELECT id FROM workspaces")]
            with as_member(edge, alice) as client:
                for workspace_id in made:
                    client.delete(f"/api/workspaces/{workspace_id}")
            agent.stop()
            signer.close()
            for workspace_id in made:
                remove_labelled(f"sam.workspace={workspace_id}")


@pytest.fixture(scope="module")
def chat(stage: Stage) -> dict[str, Any]:
    """Alice's chat, once its run is active (the first test's subject; later ones use it)."""
    made = stage.client.post(stage.chats(), json={"message": "hello there"})
    assert made.status_code == 201, made.text
    return made.json()


def test_a_new_chat_reaches_active_with_the_session_it_chose(
    stage: Stage, chat: dict[str, Any]
) -> None:
    assert chat["status"] == "starting" and chat["topic"] == "hello there"
    run = stage.until_run(
        chat["id"],
        "the run to be active",
        lambda r: r["status"] == "active",
        ACTIVE_TIMEOUT_SECONDS,
    )
    assert [step["status"] for step in run["steps"]] == ["succeeded"] * 4
    row = stage.chat_row(chat["id"])
    assert row["status"] == "active"
    assert (row["workspace_id"], row["agent_session_id"], row["run_id"]) == (
        run["workspace_id"],
        run["agent_session_id"],
        run["run_id"],
    )
    # The agent runs the session of the id the run chose, with the first message as its
    # first prompt, named by the prompt id the chat stored it under.
    assert stage.session(run)["id"] == run["agent_session_id"]
    prompts = wait_for(
        lambda: stage.prompts(run), "the first prompt's frame", FRAME_TIMEOUT_SECONDS
    )
    assert [p["text"] for p in prompts] == ["hello there"]
    # The chat: the user's message first (under the prompt's id), then the run's steps.
    history = stage.messages(chat["id"])
    assert history[0]["id"] == f"prompt:{prompts[0]['prompt_id']}"
    assert (history[0]["role"], history[0]["frame"]["text"]) == ("user", "hello there")
    shown = [
        (m["frame"]["step"], m["frame"]["status"]) for m in history if m["frame"]["type"] == "run"
    ]
    assert shown == [
        (step, status)
        for step in ("workspace", "workspace_ready", "agent_session", "linked")
        for status in ("started", "succeeded")
    ]


def test_a_follow_up_while_the_agent_is_down_is_delivered_once_when_it_is_back(
    stage: Stage, chat: dict[str, Any]
) -> None:
    run = stage.run(chat["id"])
    stage.agent.kill()
    try:
        sent = stage.client.post(stage.chats(f"/{chat['id']}/messages"), json={"text": "again"})
        assert sent.status_code == 202, sent.text
        message = sent.json()
        assert message["role"] == "user" and message["frame"]["text"] == "again"
        waiting = stage.run(chat["id"])
        assert waiting["status"] == "active" and waiting["pending_controls"] == 1
    finally:
        stage.agent.start()
    stage.until_run(
        chat["id"],
        "the follow-up to be delivered",
        lambda r: r["pending_controls"] == 0,
        DELIVERY_TIMEOUT_SECONDS,
    )
    prompt_id = message["id"].removeprefix("prompt:")

    def delivered() -> list[dict[str, Any]]:
        return [p for p in stage.prompts(run) if p["prompt_id"] == prompt_id]

    taken = wait_for(delivered, "the follow-up's prompt frame", FRAME_TIMEOUT_SECONDS)
    assert [p["text"] for p in taken] == ["again"]  # once


def test_a_permission_answer_reaches_the_agent(stage: Stage, chat: dict[str, Any]) -> None:
    run = stage.run(chat["id"])
    sent = stage.client.post(stage.chats(f"/{chat['id']}/messages"), json={"text": "ask"})
    assert sent.status_code == 202, sent.text
    request = wait_for(
        lambda: next((f for f in stage.frames(run) if f["type"] == "permission_request"), None),
        "the agent's permission request",
        FRAME_TIMEOUT_SECONDS,
    )
    path = stage.chats(f"/{chat['id']}/permissions/{request['request_id']}")
    bad = stage.client.post(path, json={"option_id": "allow", "extra": 1})
    assert bad.status_code == 400, bad.text
    answered = stage.client.post(path, json={"option_id": "allow"})
    assert answered.status_code == 202, answered.text
    resolved = wait_for(
        lambda: next((f for f in stage.frames(run) if f["type"] == "permission_resolved"), None),
        "the permission to be resolved",
        FRAME_TIMEOUT_SECONDS,
    )
    assert (resolved["option_id"], resolved["by"]) == ("allow", "viewer")
    # Mallory cannot answer, stop or see it: alice's project is unknown to her.
    with as_member(stage.edge, stage.mallory) as theirs:
        assert theirs.post(path, json={"option_id": "deny"}).status_code == 404
        assert theirs.get(stage.chats(f"/{chat['id']}/run")).status_code == 404
        assert theirs.post(stage.chats(f"/{chat['id']}/stop")).status_code == 404


def test_stop_stops_the_agent_session_and_the_chat(stage: Stage, chat: dict[str, Any]) -> None:
    run = stage.run(chat["id"])
    stopped = stage.client.post(stage.chats(f"/{chat['id']}/stop"))
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "stopped"
    assert stage.run(chat["id"])["status"] == "stopped"
    assert stage.session(run)["state"] == "stopped"
    assert stage.chat_row(chat["id"])["status"] == "stopped"


def test_after_the_workspace_is_deleted_a_follow_up_starts_a_fresh_run_with_context(
    stage: Stage,
) -> None:
    made = stage.client.post(stage.chats(), json={"message": "remember the word otter"})
    assert made.status_code == 201, made.text
    chat_id = made.json()["id"]
    first = stage.until_run(
        chat_id, "the run to be active", lambda r: r["status"] == "active", ACTIVE_TIMEOUT_SECONDS
    )
    deleted = stage.client.delete(f"/api/workspaces/{first['workspace_id']}")
    assert deleted.status_code == 204, deleted.text
    assert stage.chat_row(chat_id)["status"] == "stopped"  # the workspace took its chat along
    assert stage.run(chat_id)["status"] == "stopped"
    sent = stage.client.post(stage.chats(f"/{chat_id}/messages"), json={"text": "which word?"})
    assert sent.status_code == 202, sent.text
    second = stage.until_run(
        chat_id,
        "a fresh run to be active",
        lambda r: r["status"] == "active" and r["run_id"] != first["run_id"],
        ACTIVE_TIMEOUT_SECONDS,
    )
    assert second["workspace_id"] != first["workspace_id"]
    prompts = wait_for(
        lambda: stage.prompts(second), "the fresh run's prompt", FRAME_TIMEOUT_SECONDS
    )
    text = prompts[0]["text"]
    assert "User: remember the word otter" in text  # the earlier conversation, as context
    assert text.endswith("which word?") and prompts[0]["prompt_id"] == sent.json()["id"][7:]


def test_bad_requests_are_refused_with_a_reason(stage: Stage, chat: dict[str, Any]) -> None:
    for body in ({}, {"message": ""}, {"message": "x", "agent": "Not An Agent"}):
        refused = stage.client.post(stage.chats(), json=body)
        assert refused.status_code in (400, 422), refused.text
        assert set(refused.json()) == {"error", "message"}
    unknown = stage.client.post(f"/api/projects/p{'0' * 32}/chats", json={"message": "hi"})
    assert unknown.status_code == 404
    no_chat = stage.client.post(stage.chats("/c000/messages"), json={"text": "hi"})
    assert no_chat.status_code == 404


def test_an_agent_that_exits_at_start_fails_the_run_with_its_words(stage: Stage) -> None:
    made = stage.client.post(stage.chats(), json={"message": "hello", "agent": STAND_IN_EXITS})
    assert made.status_code == 201, made.text
    chat_id = made.json()["id"]
    run = wait_for(
        lambda: (run := stage.run(chat_id))["status"] != "starting" and run,
        "the run to end",
        ACTIVE_TIMEOUT_SECONDS,
    )
    assert run["status"] == "failed", run
    statuses = [step["status"] for step in run["steps"]]
    assert statuses == ["succeeded", "succeeded", "failed", "pending"]
    assert run["error"].startswith("The agent could not start: ")
    assert "the stand-in refuses to start again" in run["error"]  # the last line of its stderr
    assert run["error"].endswith("Fix the cause, then send your message again.")
    # The chat shows why, and is failed, not active; the node's session is crashed.
    shown = [m["frame"] for m in stage.messages(chat_id) if m["frame"]["type"] == "run"]
    assert (shown[-1]["step"], shown[-1]["status"]) == ("agent_session", "failed")
    assert shown[-1]["detail"] == run["error"]
    assert stage.chat_row(chat_id)["status"] == "failed"
    assert stage.session(run)["state"] == "crashed"
    deleted = stage.client.delete(f"/api/workspaces/{run['workspace_id']}")
    assert deleted.status_code == 204, deleted.text


def test_steps_run_again_after_an_edge_crash_make_nothing_twice(stage: Stage) -> None:
    """The edge dies after the agent session was made and the chat linked, but (as the
    rolled-back storage says) before either result was written: its alarm, firing after
    the restart, runs both steps again. The agent still has one session, which took its
    first prompt once, and the chat shows each step's start once."""
    made = stage.client.post(stage.chats(), json={"message": "count me once"})
    assert made.status_code == 201, made.text
    chat_id = made.json()["id"]
    run = stage.until_run(
        chat_id, "the run to be active", lambda r: r["status"] == "active", ACTIVE_TIMEOUT_SECONDS
    )

    def roll_back() -> None:
        storage, at_ms = runner_storage(stage.edge.data_dir, run["run_id"]), time.time() * 1000
        storage.sql.exec(
            "UPDATE steps SET status = 'pending', started_at = NULL, detail = NULL "
            "WHERE name IN ('agent_session', 'linked')"
        )
        storage.sql.exec("UPDATE run SET status = 'starting', alarm_at = ?", at_ms / 1000)
        storage.store_alarm(int(at_ms), retries=0)
        storage.close()
        scheduler = AlarmScheduler(stage.edge.data_dir / "do", SystemClock())
        scheduler.schedule("TaskRunner", runner_id(stage.edge.data_dir, run["run_id"]), int(at_ms))
        asyncio.run(scheduler.stop())  # closes its index: the restarted edge reads it

    stage.crash_edge(roll_back)
    again = stage.until_run(
        chat_id, "the run to be active again", lambda r: r["status"] == "active", 60.0
    )
    assert (again["workspace_id"], again["agent_session_id"]) == (
        run["workspace_id"],
        run["agent_session_id"],
    )
    # The session step ran again (its create was repeated: 201, then 200 for the same id).
    creates = [
        line.split("status=")[1].split()[0]
        for line in stage.agent.log().splitlines()
        if "http.request method=POST" in line
        and f"path=/workspaces/{run['workspace_id']}/agent-sessions " in line
    ]
    assert creates == ["201", "200"], creates
    with stage.agent_client() as client:
        listed = client.get(f"/workspaces/{run['workspace_id']}/agent-sessions")
    assert [s["id"] for s in listed.json()["sessions"]] == [run["agent_session_id"]]
    assert [p["text"] for p in stage.prompts(run)] == ["count me once"]
    shown = [
        (m["frame"]["step"], m["frame"]["status"])
        for m in stage.messages(chat_id)
        if m["frame"]["type"] == "run"
    ]
    assert shown.count(("agent_session", "started")) == 1
    assert shown.count(("linked", "succeeded")) == 1


def runner_id(data_dir: Path, run_id: str) -> str:
    return (
        DurableObjectNamespace(
            TaskRunner,
            data_dir / "do" / "TaskRunner",
            lambda: None,
            AlarmScheduler(data_dir, SystemClock()),
        )
        .idFromName(run_id)
        .toString()
    )


def runner_storage(data_dir: Path, run_id: str) -> DurableObjectStorage:
    """The run's object's storage file, as the stopped edge left it."""
    return DurableObjectStorage(
        data_dir / "do" / "TaskRunner" / f"{runner_id(data_dir, run_id)}.sqlite"
    )
