"""The TaskRunner Durable Object and the chat flow on the local twin, in-process, on an
injected clock, without a node agent: the paths that end before an agent session exists.

The runtime is the one `sam dev` builds from the real wrangler.toml (D1 migrated,
PROJECT_DATA, TASK_RUNNER, NODE_LIFECYCLE and their alarms), whose Hetzner and Cloudflare
DNS are the loopback fakes (tests/fakes/): a chat of a `hetzner` project provisions a real
node row and a VM in the fake, and the workspace waits for it. Calls go through
worker/chats/flow.py, as the API routes call it. Covers: the user's message first and the
run's progress as `run` messages; a permanent failure's reason in the chat (no model key,
a workspace that failed); the workspace step run again after a "kill" between its side
effect and its persisted result (one workspace, one VM); controls waiting while the run
starts; stop while starting; bad controls and runs refused; another user's project and
chat as unknown as made-up ids.
"""

from collections.abc import AsyncIterator
from typing import Any

import pytest

from agent.sessions.session import START_HINT
from tests.fakes.hetzner import FakeHetzner
from tests.worker.node_support import add_user, advance
from twin import env as local_env
from twin.clock import ManualClock
from wire.agent_session import CrashedFrame
from wire.chat import ChatStatus, message_id
from worker.auth.credentials import CredentialKind, save_credential
from worker.auth.users import User, get_user
from worker.chats import flow, runner
from worker.chats.crash_report import crash_reason
from worker.chats.flow import NewChat
from worker.chats.run import STEP_TIMEOUT_SECONDS, Control, RunSpec, Step
from worker.chats.steps import NO_MODEL_KEY, READY_POLL_SECONDS
from worker.deployment import Deployment
from worker.errors import Conflict, InvalidInput, NotFound
from worker.projects import chat_data
from worker.projects import store as projects
from worker.projects.model import new_project_id
from worker.workspaces import service as workspaces
from worker.workspaces import store as workspace_store

REPOSITORY = "https://example.com/acme/app.git"


@pytest.fixture
async def deployment(cloud: local_env.Runtime) -> Deployment:
    return Deployment.of(cloud.env, cloud.alarms.clock)


@pytest.fixture
def clock(cloud: local_env.Runtime) -> ManualClock:
    return cloud.alarms.clock  # type: ignore[return-value]


async def new_user(deployment: Deployment, login: str, hetzner: FakeHetzner | None) -> User:
    user_id = await add_user(deployment.env, login)
    if hetzner is not None:
        await save_credential(deployment, user_id, CredentialKind.HETZNER, "", hetzner.add_token())
    user = await get_user(deployment.env.DATABASE, user_id)
    assert user is not None
    return user


async def new_project(deployment: Deployment, user: User, agent: str = "claude-code") -> str:
    project = await projects.insert(
        deployment,
        id=new_project_id(),
        user_id=user.id,
        name="app",
        repository=REPOSITORY,
        default_branch="main",
        provider="hetzner",
        node_size=None,
        agent=agent,
        permission_mode="ask",
    )
    return project.id


@pytest.fixture
async def alice(deployment: Deployment, hetzner: FakeHetzner) -> User:
    user = await new_user(deployment, "alice", hetzner)
    await save_credential(deployment, user.id, CredentialKind.ANTHROPIC, "", "sk-ant-api-test")
    return user


@pytest.fixture
async def project(deployment: Deployment, alice: User) -> str:
    return await new_project(deployment, alice)


async def messages(deployment: Deployment, project_id: str, chat_id: str) -> list[dict]:
    return await chat_data.messages(deployment, project_id, chat_id, 0, None, 500)


def progress(history: list[dict]) -> list[tuple[str, str]]:
    """(step, status) of the chat's `run` messages, in order."""
    return [
        (m["frame"]["step"], m["frame"]["status"]) for m in history if m["frame"]["type"] == "run"
    ]


async def run_of(deployment: Deployment, alice: User, project_id: str, chat_id: str) -> dict:
    return await flow.run_of(deployment, alice, project_id, chat_id)


async def started_chat(
    deployment: Deployment, cloud: local_env.Runtime, user: User, project_id: str
) -> dict:
    chat = await flow.new_chat(deployment, user, project_id, NewChat(message="Fix the build"))
    await advance(cloud, 0)  # the run's first alarm, due at once
    return chat


async def test_a_new_chat_shows_the_message_first_then_the_runs_progress(
    deployment: Deployment, cloud: local_env.Runtime, alice: User, project: str
) -> None:
    chat = await started_chat(deployment, cloud, alice, project)
    assert chat["status"] == ChatStatus.STARTING
    assert chat["topic"] == "Fix the build"
    history = await messages(deployment, project, chat["id"])
    first = history[0]
    assert first["role"] == "user" and first["frame"]["text"] == "Fix the build"
    assert first["id"] == f"prompt:{first['frame']['prompt_id']}"
    # The workspace is made on a new Hetzner node, which is still booting: the run waits.
    assert progress(history) == [
        ("workspace", "started"),
        ("workspace", "succeeded"),
        ("workspace_ready", "started"),
    ]
    run = await run_of(deployment, alice, project, chat["id"])
    assert run["status"] == "starting" and run["step"] == "workspace_ready"
    workspace = await workspace_store.find(deployment, run["workspace_id"])
    assert workspace is not None and workspace.user_id == alice.id
    shown = await chat_data.get_chat(deployment, project, chat["id"])
    assert shown["run_id"] == run["run_id"] and shown["workspace_id"] == run["workspace_id"]


async def test_without_a_model_key_the_run_fails_saying_where_to_add_one(
    deployment: Deployment, cloud: local_env.Runtime, hetzner: FakeHetzner
) -> None:
    bob = await new_user(deployment, "bob", hetzner)
    project_id = await new_project(deployment, bob)
    chat = await started_chat(deployment, cloud, bob, project_id)
    run = await run_of(deployment, bob, project_id, chat["id"])
    assert run["status"] == "failed"
    assert "add a key in Settings → Agent" in run["error"] and run["error"] == NO_MODEL_KEY
    assert run["workspace_id"] is not None  # chosen, but never made: no VM was paid for
    assert await workspace_store.find(deployment, run["workspace_id"]) is None
    history = await messages(deployment, project_id, chat["id"])
    assert history[-1]["frame"] == {
        "type": "run",
        "run_id": run["run_id"],
        "step": "workspace",
        "status": "failed",
        "detail": NO_MODEL_KEY,
    }
    shown = await chat_data.get_chat(deployment, project_id, chat["id"])
    assert shown["status"] == ChatStatus.FAILED


async def test_a_failed_workspace_fails_the_run_with_its_message(
    deployment: Deployment, cloud: local_env.Runtime, alice: User, project: str
) -> None:
    chat = await started_chat(deployment, cloud, alice, project)
    run = await run_of(deployment, alice, project, chat["id"])
    workspace = await workspace_store.find(deployment, run["workspace_id"])
    assert workspace is not None
    # What the node's agent reports when the clone fails (its provisioning-failed callback).
    report = {"step": "clone", "message": "Repository not found", "hint": "Check its URL."}
    await workspaces.agent_failed(deployment, workspace, report)
    await advance(cloud, 0)  # the callback woke the run: no poll is waited for
    run = await run_of(deployment, alice, project, chat["id"])
    assert run["status"] == "failed"
    assert "The workspace failed: Repository not found (Check its URL.)" in run["error"]
    history = await messages(deployment, project, chat["id"])
    assert progress(history)[-1] == ("workspace_ready", "failed")
    assert (await chat_data.get_chat(deployment, project, chat["id"]))["status"] == "failed"


async def test_the_workspaces_ready_callback_moves_the_run_on_at_once(
    deployment: Deployment, cloud: local_env.Runtime, alice: User, project: str
) -> None:
    chat = await started_chat(deployment, cloud, alice, project)
    run = await run_of(deployment, alice, project, chat["id"])
    workspace = await workspace_store.find(deployment, run["workspace_id"])
    assert workspace is not None and run["step"] == "workspace_ready"
    # What the node's agent reports once the workspace runs (its ready callback).
    await workspaces.agent_ready_callback(deployment, workspace, {})
    await advance(cloud, 0)  # woken: not a second of the poll has passed
    run = await run_of(deployment, alice, project, chat["id"])
    assert [s["status"] for s in run["steps"][:2]] == ["succeeded", "succeeded"]
    assert run["step"] == "agent_session"
    history = await messages(deployment, project, chat["id"])
    assert ("workspace_ready", "succeeded") in progress(history)
    # A repeated callback (the agent restarted) wakes the run again: it only looks again.
    again = await workspace_store.find(deployment, run["workspace_id"])
    assert again is not None
    await workspaces.agent_ready_callback(deployment, again, {})
    await advance(cloud, 0)
    run = await run_of(deployment, alice, project, chat["id"])
    assert run["status"] == "starting" and run["step"] == "agent_session"


async def test_a_session_that_crashed_at_start_is_explained_by_its_crash_report(
    deployment: Deployment, cloud: local_env.Runtime, alice: User, project: str
) -> None:
    chat = await started_chat(deployment, cloud, alice, project)
    run = await run_of(deployment, alice, project, chat["id"])
    spec = runner_spec(cloud, run["run_id"])
    session = run["agent_session_id"]
    assert await crash_reason(deployment, spec, session) is None  # nothing has crashed
    # The node's outbox brings the session's last frame, as the agent wrote it at start.
    tail = "boom\n" * 400 + "Error: Cannot find module '/opt/adapter/index.js'\n"
    crashed = CrashedFrame(
        seq=1, type="crashed", exit_code=1, stderr_tail=tail, hint=START_HINT, restarting=False
    )
    frame = crashed.model_dump(mode="json")
    outbox = {
        "id": message_id(session, frame),
        "project_id": project,
        "chat_id": chat["id"],
        "frame": frame,
        "created_at": "2026-12-05T00:00:00Z",
    }
    await chat_data.ingest(deployment, project, run["workspace_id"], [outbox])
    reason = await crash_reason(deployment, spec, session)
    assert reason is not None
    assert reason.startswith("The agent could not start (it exited with code 1): " + START_HINT)
    assert reason.splitlines()[-2] == "Error: Cannot find module '/opt/adapter/index.js'"
    assert len(reason) < len(tail)  # the tail's end only: the chat has all of it
    assert "send your message again" in reason
    # Another session's crash in the same chat says nothing of this one.
    assert await crash_reason(deployment, spec, "s-another") is None


async def test_a_step_run_again_after_a_kill_does_not_repeat_its_side_effect(
    deployment: Deployment,
    cloud: local_env.Runtime,
    alice: User,
    project: str,
    hetzner: FakeHetzner,
) -> None:
    chat = await started_chat(deployment, cloud, alice, project)
    run = await run_of(deployment, alice, project, chat["id"])
    servers_before = len(hetzner.all_servers())
    # A crash after the workspace was made but before its result was written: the step's
    # row is rolled back in the object's own storage, and the alarm fires again.
    storage = runner_storage(cloud, run["run_id"])
    storage.sql.exec(
        "UPDATE steps SET status = 'pending', started_at = NULL, detail = NULL "
        "WHERE name IN ('workspace', 'workspace_ready')"
    )
    storage.sql.exec("UPDATE run SET alarm_at = ?", deployment.now())
    await storage.setAlarm(deployment.now() * 1000)
    await advance(cloud, 0)
    again = await run_of(deployment, alice, project, chat["id"])
    assert again["workspace_id"] == run["workspace_id"]
    assert [s["status"] for s in again["steps"][:2]] == ["succeeded", "running"]
    mine = await workspace_store.list_for(deployment, alice.id)
    assert [w.id for w in mine] == [run["workspace_id"]]  # one workspace
    assert len(hetzner.all_servers()) == servers_before  # one VM
    history = await messages(deployment, project, chat["id"])
    assert progress(history).count(("workspace", "succeeded")) == 1  # shown once


async def test_controls_wait_while_the_run_starts_and_stop_ends_it(
    deployment: Deployment, cloud: local_env.Runtime, alice: User, project: str
) -> None:
    chat = await started_chat(deployment, cloud, alice, project)
    message = await flow.follow_up(deployment, alice, project, chat["id"], "And the docs")
    assert message["role"] == "user" and message["frame"]["text"] == "And the docs"
    run = await run_of(deployment, alice, project, chat["id"])
    assert run["status"] == "starting" and run["pending_controls"] == 1  # waits for the session
    stopped = await flow.stop(deployment, alice, project, chat["id"])
    assert stopped["status"] == ChatStatus.STOPPED
    run = await run_of(deployment, alice, project, chat["id"])
    assert run["status"] == "stopped" and run["pending_controls"] == 0
    await advance(cloud, STEP_TIMEOUT_SECONDS[Step.WORKSPACE_READY])  # nothing more happens
    assert (await run_of(deployment, alice, project, chat["id"]))["status"] == "stopped"
    # A permission answer needs a running agent; a stopped chat has none.
    with pytest.raises(Conflict, match="no running agent"):
        await flow.answer_permission(deployment, alice, project, chat["id"], "r1", "allow")


async def test_a_step_that_never_finishes_fails_the_run_after_its_timeout(
    deployment: Deployment, cloud: local_env.Runtime, alice: User, project: str
) -> None:
    chat = await started_chat(deployment, cloud, alice, project)  # the node never boots
    await advance(cloud, STEP_TIMEOUT_SECONDS[Step.WORKSPACE_READY] + READY_POLL_SECONDS)
    run = await run_of(deployment, alice, project, chat["id"])
    assert run["status"] == "failed"
    assert "Waiting for the workspace to start took over 15 minutes" in run["error"]
    assert "is pending" in run["error"] or "is creating" in run["error"]


async def test_bad_runs_and_controls_are_refused(
    deployment: Deployment, cloud: local_env.Runtime, alice: User, project: str
) -> None:
    chat = await started_chat(deployment, cloud, alice, project)
    run_id = (await run_of(deployment, alice, project, chat["id"]))["run_id"]
    with pytest.raises(InvalidInput, match="control is not valid"):
        await runner.deliver(deployment, run_id, Control.model_construct(id="x y", kind="prompt"))
    stub = deployment.env.TASK_RUNNER.getByName(run_id)
    refused = await stub.deliver(run_id, {"id": "k1", "kind": "reboot"}, deployment.now())
    assert refused["error"] == "invalid_control"
    refused = await stub.start({"run_id": "r1"}, deployment.now())
    assert refused["error"] == "invalid_run"
    with pytest.raises(NotFound, match="no run"):
        await runner.deliver(deployment, "r-unknown", Control(id="k2", kind="stop"))


async def test_another_users_project_and_chat_are_unknown(
    deployment: Deployment,
    cloud: local_env.Runtime,
    alice: User,
    project: str,
    hetzner: FakeHetzner,
) -> None:
    chat = await started_chat(deployment, cloud, alice, project)
    mallory = await new_user(deployment, "mallory", hetzner)
    before = await messages(deployment, project, chat["id"])
    attempts: list[Any] = [
        flow.new_chat(deployment, mallory, project, NewChat(message="hi")),
        flow.follow_up(deployment, mallory, project, chat["id"], "hi"),
        flow.stop(deployment, mallory, project, chat["id"]),
        flow.answer_permission(deployment, mallory, project, chat["id"], "r1", "allow"),
        flow.run_of(deployment, mallory, project, chat["id"]),
    ]
    for attempt in attempts:
        with pytest.raises(NotFound) as refused:
            await attempt
        assert refused.value.code == "project_not_found"
    # Nothing of hers reached alice's chat, and her own project has no such chat.
    assert await messages(deployment, project, chat["id"]) == before
    theirs = await new_project(deployment, mallory)
    with pytest.raises(NotFound, match="no chat"):
        await flow.follow_up(deployment, mallory, theirs, chat["id"], "hi")


def runner_spec(cloud: local_env.Runtime, run_id: str) -> RunSpec:
    """The spec the run was started with, as its object keeps it."""
    rows = runner_storage(cloud, run_id).sql.exec("SELECT spec FROM run").raw()
    return RunSpec.model_validate_json(next(iter(rows))[0])


def runner_storage(cloud: local_env.Runtime, run_id: str) -> Any:
    """The run's object's own storage, as the runtime keeps it (a test's way in, as a crash
    would leave it)."""
    namespace = cloud.env.TASK_RUNNER
    return namespace.host(namespace.idFromName(run_id)).storage


@pytest.fixture(autouse=True)
async def _settled(cloud: local_env.Runtime) -> AsyncIterator[None]:
    yield
    await cloud.alarms.settle()
