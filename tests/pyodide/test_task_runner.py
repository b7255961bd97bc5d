"""The TaskRunner Durable Object under real Pyodide, driving a chat's run through the
Worker's real services to the loopback node (loopback_nodes.py): its alarm takes the steps
(the workspace made on the user's running node and handed to its agent, the workspace
ready once the agent's callback says so, the agent session started with the chat's first
prompt, the chat linked), then delivers controls; a step whose persisted result is rolled
back (as a crash between its side effect and its write leaves it) runs again on workerd's
alarm retry without doing its side effect twice. Every public RPC method is called (the
last test checks that against the class)."""

import inspect
import secrets
import time
from dataclasses import dataclass
from typing import Any

import pytest

from durable_objects.task_runner import TaskRunner
from tests.pyodide.callers import APP, Member, bearer, new_node, send_json, sign_in
from tests.pyodide.harness import PyodideWorker
from tests.pyodide.loopback_nodes import AgentDouble
from tests.pyodide.project_chat import BINDING as PROJECT_DATA
from tests.pyodide.project_chat import REPOSITORY, ChatHost, add_project, new_id
from wire.agent_session import NewAgentSession
from wire.version import VERSION
from worker.chats.run import Run

BINDING = "TASK_RUNNER"
HANDLERS = {"alarm", "fetch"}
CALLED: set[str] = set()


@dataclass(frozen=True)
class World:
    worker: PyodideWorker
    agent: AgentDouble
    owner: Member
    node_token: str
    project_id: str


def rpc(worker: PyodideWorker, run_id: str, method: str, *args: Any) -> Any:
    """`method` on the run's object, through the harness's RPC path (recorded)."""
    CALLED.add(method)
    return worker.durable_object(BINDING, run_id, method, *args)


@pytest.fixture(scope="module")
def world(chat_host: ChatHost) -> World:
    """A user with an Anthropic key (the claude-code agent needs one) and a running local
    node whose agent is the double, made through the routes a user and an agent call."""
    worker, agent, anthropic = chat_host.worker, chat_host.agent, chat_host.anthropic
    owner = sign_in(worker, "pyrunner")
    key = "sk-ant-oat01-runner-" + secrets.token_hex(16)
    anthropic.keys = {key}
    body = {"kind": "anthropic", "secret": key, "base_url": None}
    saved = send_json(worker, "POST", f"{APP}/api/credentials", body, owner.session_headers())
    assert saved.status == 201, saved.body
    node_id = new_node(worker, chat_host.launcher, owner)
    node_token = owner.node_tokens[node_id]
    ready = {"agent_port": agent.port, "version": VERSION}
    answer = send_json(
        worker, "POST", f"{APP}/api/nodes/{node_id}/ready", ready, bearer(node_token)
    )
    assert answer.status == 200, answer.body
    return World(worker, agent, owner, node_token, add_project(worker, owner.id))


def new_run(world: World, owner: Member | None = None, project_id: str | None = None) -> dict:
    """A chat in ProjectData and the spec of the run that starts it."""
    owner = owner or world.owner
    project_id = project_id or world.project_id
    chat_id = new_id("c")
    made = world.worker.durable_object(
        PROJECT_DATA,
        project_id,
        "create_chat",
        project_id,
        chat_id,
        owner.id,
        "a chat",
        time.time(),
    )
    assert made["id"] == chat_id, made
    return {
        "run_id": new_id("r"),
        "mode": "conversation",
        "user_id": owner.id,
        "project_id": project_id,
        "chat_id": chat_id,
        "prompt": "Fix the tests",
        "prompt_id": new_id("p"),
        "agent": "claude-code",
        "permission_mode": "ask",
        "repository": REPOSITORY,
        "provider": "local",
    }


def workspace_started(world: World, workspace_id: str) -> None:
    """The node's agent reports the workspace running, as its ready callback does."""
    running = {"state": "running", "container_id": "c1", "remote_user": "sam", "backend": "host"}
    path = f"{APP}/api/workspaces/{workspace_id}/ready"
    answer = send_json(world.worker, "POST", path, running, bearer(world.node_token))
    assert answer.status == 200, answer.body


def chat_of(world: World, spec: dict) -> dict:
    return world.worker.durable_object(
        PROJECT_DATA, spec["project_id"], "get_chat", spec["project_id"], spec["chat_id"]
    )


def chat_message_ids(world: World, spec: dict) -> list[str]:
    messages = world.worker.durable_object(
        PROJECT_DATA,
        spec["project_id"],
        "messages",
        spec["project_id"],
        spec["chat_id"],
        0,
        None,
        100,
    )
    return [message["id"] for message in messages]


def steps_of(run: dict) -> dict[str, str]:
    return {step["name"]: step["status"] for step in run["steps"]}


def roll_back(world: World, run_id: str, *statements: str) -> None:
    for statement in statements:
        world.worker.object_sql(BINDING, run_id, statement)


def test_a_run_takes_its_steps_on_alarms_then_delivers_controls(world: World) -> None:
    worker, spec = world.worker, new_run(world)
    run_id = spec["run_id"]

    started = Run.model_validate(rpc(worker, run_id, "start", spec, time.time()))
    assert (started.status, started.step) == ("starting", "workspace")
    assert worker.alarm_at(BINDING, run_id) is not None
    assert rpc(worker, run_id, "start", spec, time.time())["workspace_id"] == started.workspace_id

    assert worker.run_alarm(BINDING, run_id)
    waiting = rpc(worker, run_id, "status", run_id)
    assert steps_of(waiting)["workspace"] == "succeeded"
    assert waiting["step"] == "workspace_ready"  # the agent says it is still being made
    assert world.agent.creates.count(started.workspace_id) == 1
    assert worker.alarm_at(BINDING, run_id) is not None  # it looks again later

    workspace_started(world, started.workspace_id)
    # What the ready callback does for a chat linked to the workspace: the run looks now,
    # not at its next poll. An unknown run is not woken.
    woken = time.time()
    assert rpc(worker, run_id, "wake", run_id, woken)["step"] == "workspace_ready"
    assert worker.alarm_at(BINDING, run_id) <= woken * 1000
    assert rpc(worker, run_id, "wake", "r-other", woken) is None
    assert worker.run_alarm(BINDING, run_id)

    active = Run.model_validate(rpc(worker, run_id, "status", run_id))
    assert active.status == "active"
    assert set(steps_of(active.model_dump()).values()) == {"succeeded"}
    [body] = [b for b in world.agent.bodies if started.agent_session_id.encode() in b]
    session = NewAgentSession.model_validate_json(body)
    assert (session.prompt_id, session.prompt) == (spec["prompt_id"], "Fix the tests")
    assert session.chat is not None and session.chat.chat_id == spec["chat_id"]
    chat = chat_of(world, spec)
    assert (chat["status"], chat["workspace_id"], chat["agent_session_id"], chat["run_id"]) == (
        "active",
        started.workspace_id,
        started.agent_session_id,
        run_id,
    )
    assert f"run:{run_id}:linked:succeeded" in chat_message_ids(world, spec)

    follow_up = {"id": "p-follow-up", "kind": "prompt", "text": "And the docs?"}
    rpc(worker, run_id, "deliver", run_id, follow_up, time.time())
    delivered = rpc(worker, run_id, "deliver", run_id, follow_up, time.time())
    assert delivered["pending_controls"] == 0
    assert world.agent.prompts[started.agent_session_id] == [spec["prompt_id"], "p-follow-up"]

    stopped = rpc(worker, run_id, "cancel", run_id, time.time())
    assert stopped["status"] == "stopped"
    assert world.agent.stopped == [started.agent_session_id]
    assert chat_of(world, spec)["status"] == "stopped"
    late = rpc(
        worker, run_id, "deliver", run_id, {"id": "p-late", "kind": "prompt", "text": "?"}, 0
    )
    assert late["error"] == "run_ended"
    assert "send the message again" in late["message"]


def test_a_step_rerun_after_its_result_is_rolled_back_does_not_repeat_its_side_effect(
    world: World,
) -> None:
    worker, spec = world.worker, new_run(world)
    run_id = spec["run_id"]
    started = rpc(worker, run_id, "start", spec, time.time())
    workspace_id, session_id = started["workspace_id"], started["agent_session_id"]
    assert worker.run_alarm(BINDING, run_id)
    # Crashed after making the workspace, before persisting that the step succeeded:
    roll_back(
        world, run_id, "UPDATE steps SET status = 'running', detail = NULL WHERE name = 'workspace'"
    )

    assert worker.run_alarm(BINDING, run_id, retry=True)

    assert steps_of(rpc(worker, run_id, "status", run_id))["workspace"] == "succeeded"
    assert world.agent.creates.count(workspace_id) == 1  # found, not made again

    workspace_started(world, workspace_id)
    assert worker.run_alarm(BINDING, run_id)
    assert rpc(worker, run_id, "status", run_id)["status"] == "active"
    # Crashed after the agent took the session, before the step's result was written:
    roll_back(
        world,
        run_id,
        "UPDATE steps SET status = 'running', detail = NULL WHERE name = 'agent_session'",
        "UPDATE steps SET status = 'pending', started_at = NULL WHERE name = 'linked'",
        "UPDATE run SET status = 'starting'",
    )

    assert worker.run_alarm(BINDING, run_id, retry=True)

    again = rpc(worker, run_id, "status", run_id)
    assert again["status"] == "active"
    assert world.agent.session_posts.count(session_id) == 2  # asked again with the same id…
    assert list(world.agent.sessions).count(session_id) == 1  # …which made no second session
    assert world.agent.prompts[session_id] == [spec["prompt_id"]]  # the first prompt once
    shown = chat_message_ids(world, spec)
    assert shown.count(f"run:{run_id}:agent_session:succeeded") == 1
    assert chat_of(world, spec)["agent_session_id"] == session_id


def test_a_run_without_a_model_key_fails_with_what_to_do(world: World) -> None:
    keyless = sign_in(world.worker, "pyrunner-keyless")
    spec = new_run(world, keyless, add_project(world.worker, keyless.id))
    run_id = spec["run_id"]
    rpc(world.worker, run_id, "start", spec, time.time())

    assert world.worker.run_alarm(BINDING, run_id)

    failed = rpc(world.worker, run_id, "status", run_id)
    assert failed["status"] == "failed"
    assert "add a key in Settings" in failed["error"]
    assert chat_of(world, spec)["status"] == "failed"
    assert not world.worker.run_alarm(BINDING, run_id)  # nothing more to do


def test_bad_calls_are_refused_with_what_to_do(world: World) -> None:
    worker, spec = world.worker, new_run(world)
    run_id = spec["run_id"]

    invalid = rpc(worker, run_id, "start", {**spec, "provider": None}, time.time())
    unknown = rpc(worker, run_id, "deliver", run_id, {"id": "x", "kind": "stop"}, time.time())
    rpc(worker, run_id, "start", spec, time.time())
    bad_control = rpc(worker, run_id, "deliver", run_id, {"id": "x", "kind": "dance"}, 0)

    assert invalid["error"] == "invalid_run"
    assert unknown["error"] == "run_not_found"
    assert bad_control["error"] == "invalid_control"
    assert rpc(worker, run_id, "status", "r-other") is None


def test_every_rpc_method_was_called(world: World) -> None:
    world.worker.require_main_module()
    public = {
        name
        for name, member in inspect.getmembers(TaskRunner, inspect.iscoroutinefunction)
        if not name.startswith("_") and name not in HANDLERS
    }
    assert public, "TaskRunner has RPC methods"
    missed = sorted(public - CALLED)
    assert not missed, f"TaskRunner RPC methods never called under real Pyodide: {missed}"
