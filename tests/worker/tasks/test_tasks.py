"""Tasks on the local twin, in-process, on an injected clock, without a node agent: submit,
the task's status and history as its run moves (the paths that end before an agent session
exists), cancel, and the refusals. The runtime is the one `sam dev` builds (D1 migrated,
its Durable Objects and alarms), with the loopback Hetzner: a task of a `hetzner` project
waits for its node to boot. Calls go through worker/tasks/service.py, as the API routes call
it; tests/worker/api/test_authorization_matrix.py covers the routes for every caller, and
tests/worker/tasks/test_task_flow.py the runs that reach a real node agent.
"""

from pathlib import Path

import pytest

from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.hetzner import FakeHetzner
from tests.worker.node_support import add_user, advance, cloud_runtime
from twin import env as local_env
from wire.agent_session import PermissionMode
from wire.chat import ChatStatus
from worker.auth.credentials import CredentialKind, save_credential
from worker.auth.users import User, get_user
from worker.chats import flow
from worker.chats.steps import NO_MODEL_KEY
from worker.deployment import Deployment
from worker.errors import Conflict, InvalidInput, NotFound
from worker.projects import chat_data
from worker.projects import store as projects
from worker.projects.model import new_project_id
from worker.tasks import service as tasks
from worker.tasks.model import TITLE_MAX_CHARS, branch_for
from worker.tasks.service import NewTask
from worker.workspaces import store as workspace_store

ELSEWHERE = "https://example.com/acme/app.git"  # not on the configured GitHub


@pytest.fixture
async def deployment(cloud: local_env.Runtime) -> Deployment:
    return Deployment.of(cloud.env, cloud.alarms.clock)


async def new_user(deployment: Deployment, login: str, hetzner: FakeHetzner, key: bool) -> User:
    user_id = await add_user(deployment.env, login)
    await save_credential(deployment, user_id, CredentialKind.HETZNER, "", hetzner.add_token())
    if key:
        await save_credential(deployment, user_id, CredentialKind.ANTHROPIC, "", "sk-ant-test")
    user = await get_user(deployment.env.DATABASE, user_id)
    assert user is not None
    return user


async def new_project(
    deployment: Deployment, user: User, mode: str = "ask", repository: str | None = None
) -> str:
    """A project of `user`'s, on the configured (loopback) GitHub unless `repository`."""
    project = await projects.insert(
        deployment,
        id=new_project_id(),
        user_id=user.id,
        name="app",
        repository=repository or f"{deployment.config.github_base_url}/acme/app.git",
        default_branch="main",
        provider="hetzner",
        node_size=None,
        agent="claude-code",
        permission_mode=mode,
    )
    return project.id


@pytest.fixture
async def alice(deployment: Deployment, hetzner: FakeHetzner) -> User:
    return await new_user(deployment, "alice", hetzner, key=True)


@pytest.fixture
async def project(deployment: Deployment, alice: User) -> str:
    return await new_project(deployment, alice)


def moves(task: object) -> list[tuple[str | None, str]]:
    return [(h.from_, h.to) for h in task.history]  # type: ignore[attr-defined]


async def test_submit_makes_the_title_branch_chat_and_a_task_mode_run_in_one_call(
    deployment: Deployment, cloud: local_env.Runtime, alice: User, project: str
) -> None:
    message = "  Fix the flaky login test!\n\nIt fails one run in ten on CI."
    task = await tasks.submit(deployment, alice, project, NewTask(message=message))
    await advance(cloud, 0)  # the run's first alarm, due at once
    assert task.title == "Fix the flaky login test!"
    assert task.branch == f"sam/fix-the-flaky-login-test-{task.id[1:9]}"
    assert task.status == "running" and task.pull_request_url is None and task.error is None
    assert moves(task) == [(None, "queued"), ("queued", "running")]
    # The project asks for every edit: nobody would answer while a task runs.
    assert task.permission_mode == PermissionMode.ACCEPT_EDITS
    chat = await chat_data.get_chat(deployment, project, task.chat_id)
    assert chat["topic"] == task.title and chat["run_id"] == task.run_id
    history = await chat_data.messages(deployment, project, task.chat_id, 0, None, 100)
    assert history[0]["role"] == "user" and history[0]["frame"]["text"] == message
    run = await flow.run_of(deployment, alice, project, task.chat_id)
    assert run["mode"] == "task" and run["step"] == "workspace_ready"
    assert [s["name"] for s in run["steps"]][4:] == [
        "turn_ended",
        "push",
        "pull_request",
        "posted",
        "finished",
    ]
    shown = await tasks.get(deployment, alice, task.id)
    assert shown.step == "workspace_ready"  # the run reports the step it is at
    assert [t.id for t in await tasks.list_tasks(deployment, alice, project)] == [task.id]


async def test_a_long_first_line_is_cut_and_any_title_makes_a_valid_branch(
    deployment: Deployment, alice: User, project: str
) -> None:
    task = await tasks.submit(deployment, alice, project, NewTask(message="ü" * 200))
    assert len(task.title) == TITLE_MAX_CHARS and task.title.endswith("…")
    assert task.branch == f"sam/u{'u' * 39}-{task.id[1:9]}"
    assert branch_for("!!! ??? ///", "t0123456789") == "sam/task-01234567"
    assert branch_for("a/../b.lock~^:", "t0123456789") == "sam/a-b-lock-01234567"


async def test_the_permission_mode_is_one_for_autonomous_work(
    deployment: Deployment, alice: User, project: str
) -> None:
    bypassing = await new_project(deployment, alice, mode="bypass")
    task = await tasks.submit(deployment, alice, bypassing, NewTask(message="Go"))
    assert task.permission_mode == PermissionMode.BYPASS  # the project's own
    asked = NewTask(message="Go", permission_mode=PermissionMode.BYPASS)
    assert (await tasks.submit(deployment, alice, project, asked)).permission_mode == "bypass"
    with pytest.raises(InvalidInput) as refused:
        await tasks.submit(deployment, alice, project, NewTask(message="Go", permission_mode="ask"))
    assert refused.value.code == "task_permission_mode" and "accept_edits" in refused.value.message
    assert len(await tasks.list_tasks(deployment, alice, project)) == 1  # none was made
    for bad in ({"message": ""}, {"message": "Go", "branch": "main"}):
        with pytest.raises(ValueError):
            NewTask.model_validate(bad)


async def test_a_run_that_fails_fails_its_task_with_the_reason(
    deployment: Deployment, cloud: local_env.Runtime, hetzner: FakeHetzner
) -> None:
    bob = await new_user(deployment, "bob", hetzner, key=False)
    project = await new_project(deployment, bob)
    task = await tasks.submit(deployment, bob, project, NewTask(message="Fix it"))
    await advance(cloud, 0)
    failed = await tasks.get(deployment, bob, task.id)
    assert failed.status == "failed" and failed.error == NO_MODEL_KEY
    assert failed.step == "workspace"  # where it failed
    assert moves(failed)[-1] == ("running", "failed")
    assert failed.history[-1].reason == NO_MODEL_KEY
    # Too late to cancel: the answer is the task as it ended.
    late = await tasks.cancel(deployment, bob, task.id)
    assert late.status == "failed" and late.history == failed.history


async def test_cancel_stops_the_run_the_chat_and_the_workspace_and_is_idempotent(
    deployment: Deployment, cloud: local_env.Runtime, alice: User, project: str
) -> None:
    task = await tasks.submit(deployment, alice, project, NewTask(message="Fix it"))
    await advance(cloud, 0)  # waiting for its node to boot
    cancelled = await tasks.cancel(deployment, alice, task.id)
    assert cancelled.status == "cancelled"
    assert moves(cancelled)[-1] == ("running", "cancelled")
    assert cancelled.history[-1].reason == "Cancelled by you."
    run = await flow.run_of(deployment, alice, project, task.chat_id)
    assert run["status"] == "stopped"
    chat = await chat_data.get_chat(deployment, project, task.chat_id)
    assert chat["status"] == ChatStatus.STOPPED
    workspace = await workspace_store.find(deployment, run["workspace_id"])
    assert workspace is not None and workspace.status == "stopped"
    again = await tasks.cancel(deployment, alice, task.id)  # an answer lost: the same task
    assert again.status == "cancelled" and len(again.history) == len(cancelled.history)
    await advance(cloud, 60)  # the run does not come back to life
    assert (await tasks.get(deployment, alice, task.id)).status == "cancelled"


async def test_another_users_project_and_task_are_unknown(
    deployment: Deployment, alice: User, project: str, hetzner: FakeHetzner
) -> None:
    task = await tasks.submit(deployment, alice, project, NewTask(message="Fix it"))
    mallory = await new_user(deployment, "mallory", hetzner, key=True)
    for attempt in (
        tasks.submit(deployment, mallory, project, NewTask(message="mine now")),
        tasks.list_tasks(deployment, mallory, project),
        tasks.get(deployment, mallory, task.id),
        tasks.cancel(deployment, mallory, task.id),
        tasks.get(deployment, alice, "t" + "0" * 32),
        tasks.get(deployment, alice, "not-an-id"),
    ):
        with pytest.raises(NotFound):
            await attempt
    assert (await tasks.get(deployment, alice, task.id)).status == "running"
    assert len(await tasks.list_tasks(deployment, alice, project)) == 1


async def test_a_project_not_on_github_is_refused_at_submit_and_nothing_is_made(
    deployment: Deployment, alice: User
) -> None:
    elsewhere = await new_project(deployment, alice, repository=ELSEWHERE)
    with pytest.raises(Conflict) as refused:
        await tasks.submit(deployment, alice, elsewhere, NewTask(message="Fix it"))
    assert refused.value.code == "task_cannot_push"
    assert f"{ELSEWHERE} is not a repository on the configured GitHub" in refused.value.message
    assert "Start a chat in this project instead" in refused.value.message
    assert await tasks.list_tasks(deployment, alice, elsewhere) == []
    assert await chat_data.list_chats(deployment, elsewhere) == []


async def test_without_a_github_app_a_task_is_refused_at_submit(
    tmp_path: Path, hetzner: FakeHetzner, cloudflare: FakeCloudflareDns
) -> None:
    async with cloud_runtime(tmp_path / "no-app", hetzner, cloudflare) as bare:
        deployment = Deployment.of(bare.env, bare.alarms.clock)
        alice = await new_user(deployment, "alice", hetzner, key=True)
        project = await new_project(deployment, alice)  # on GitHub, but no App to push with
        with pytest.raises(Conflict) as refused:
            await tasks.submit(deployment, alice, project, NewTask(message="Fix it"))
        assert refused.value.code == "task_cannot_push"
        assert "no GitHub App" in refused.value.message
        assert "docs/github-app.md" in refused.value.message
        assert await tasks.list_tasks(deployment, alice, project) == []
