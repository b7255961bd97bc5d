"""A task end to end on the real edge (TaskRunner, ProjectData, D1), a real node agent
(docker backend, the offline base image) with the stand-in ACP agent, the loopback GitHub
(its REST wire format, app JWT, narrowed installation tokens) and `git http-backend`
behind that GitHub's token rules as the git endpoint (SAM_GITHUB_BASE_URL points there).

The node agent's callbacks go to a control-plane double (tests/support/control_plane.py),
as in tests/worker/chats/test_chat_flow.py; two of them are the edge's real routes reached
through the double: its git-token answers come from the edge's
`POST /api/workspaces/{id}/git-token` (the node's token), and the test relays the chat
frames the double ingested to the edge's ingest route, as the agent would send them there.

Covers: submit → the stand-in's turn writes a file → the turn's end is ingested → SAM
commits and pushes the task's branch (the file, nothing else; the default branch
untouched) → one pull request against the default branch → its link in the chat → the
workspace stopped → the task completed, with its history. And the edge killed after the
push's or the pull request's side effect, before its persisted result (parametrised: the
run's storage and the task rolled back, the workspace running again): the alarm runs the
step again, and the branch still has its one commit and the repository its one PR. Cancel
while the agent works, and a turn that never ends (the step's start rolled back past its
timeout): nothing pushed, no PR, the workspace stopped. A task of a repository that is
not on GitHub is refused at submit (409), saying what to do.
"""

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent.config import CHECKOUT_CONTAINER_TOOLS
from agent.sessions.tools import installed
from tests.agent.conftest import BASE_IMAGE
from tests.e2e.git_server import GitServer
from tests.fakes.github import FakeGitHub
from tests.fixtures.repos import make_repo
from tests.support.agent import start_agent
from tests.support.control_plane import ControlPlaneDouble
from tests.support.docker_objects import remove_labelled
from tests.support.edge import Edge, crashed_and_restarted, running_edge, with_secrets
from tests.support.edge_tokens import EdgeSigner
from tests.support.wait import bearer, wait_for
from tests.worker.chats.test_chat_flow import (
    AGENT_COMMANDS,
    STAND_IN,
    STAND_IN_SCRIPT,
    runner_id,
    runner_storage,
)
from tests.worker.edge.test_proxy import as_member, certify, database, insert_node, sign_in
from twin.alarms import AlarmScheduler
from twin.clock import SystemClock
from wire.git import GitToken
from worker.api.ratelimit import LIMITS
from worker.auth import scoped_tokens
from worker.chats.run import STEP_TIMEOUT_SECONDS, TASK_STEPS, Step

OWNER, NAME = "alice", "app"
DONE_TIMEOUT_SECONDS = 300.0  # a clone and a devcontainer, the agent's turn, push and PR
FRAMES_TIMEOUT_SECONDS = 240.0

pytestmark = pytest.mark.timeout(900)


class EdgeGitTokens(dict):
    """The double's `git_tokens`: each workspace's answer asked of the edge's real route."""

    def __init__(self, edge: Edge, node_token: str) -> None:
        super().__init__()
        self.edge, self.node_token = edge, node_token

    def get(self, workspace_id: str, default: Any = None) -> GitToken | None:
        with self.edge.client("api") as client:
            answer = client.post(
                f"/api/workspaces/{workspace_id}/git-token", headers=bearer(self.node_token)
            )
        return GitToken.model_validate(answer.json()) if answer.status_code == 200 else default


@dataclass
class Stage:
    edge: Edge
    github: FakeGitHub
    git: GitServer
    bare: Path
    double: ControlPlaneDouble
    node_token: str
    project: str
    local_project: str  # the same repository by its path on this machine: not on GitHub
    client: httpx.Client  # the API as alice
    edges: ExitStack  # every edge process this stage started, stopped at its end
    variables: dict[str, str]

    def crash_edge(self, while_down: Callable[[], None]) -> None:
        self.edge = crashed_and_restarted(self.edge, self.edges, self.variables, while_down)
        self.double.git_tokens.edge = self.edge

    def task(self, task_id: str) -> dict[str, Any]:
        answer = self.client.get(f"/api/tasks/{task_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()

    def run(self, task: dict[str, Any]) -> dict[str, Any]:
        path = f"/api/projects/{task['project_id']}/chats/{task['chat_id']}/run"
        answer = self.client.get(path)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def relay(self, workspace_id: str, chat_id: str) -> None:
        """The chat's frames the agent sent so far, into the edge's ingest route."""
        messages = self.double.messages_of(chat_id)
        with self.edge.client("api") as client:
            answer = client.post(
                f"/api/workspaces/{workspace_id}/chat-messages",
                json={"messages": messages},
                headers=bearer(self.node_token),
            )
        assert answer.status_code == 200, answer.text

    def heads(self) -> dict[str, str]:
        listed = subprocess.run(
            ["git", "for-each-ref", "--format=%(refname:short) %(objectname)", "refs/heads"],
            cwd=self.bare,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return dict(line.split(" ") for line in listed.splitlines())

    def changed(self, base: str, head: str) -> dict[str, str]:
        diff = subprocess.run(
            ["git", "diff", "--name-status", base, head],
            cwd=self.bare,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return {path: status for status, path in (line.split("\t") for line in diff.splitlines())}

    def show(self, ref: str, path: str) -> str:
        return subprocess.run(
            ["git", "show", f"{ref}:{path}"], cwd=self.bare, capture_output=True, text=True
        ).stdout


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    if not installed(CHECKOUT_CONTAINER_TOOLS):
        pytest.fail("tools/container is not installed: run scripts/setup")
    base = tmp_path_factory.mktemp("task-flow")
    node_id = "n" + "7a5c" * 4
    with ExitStack() as stack:
        github = stack.enter_context(FakeGitHub())
        served = stack.enter_context(GitServer(base / "served", access=github.git_access))
        work = make_repo(base, NAME, files={STAND_IN_SCRIPT.name: STAND_IN_SCRIPT.read_text()})
        url = served.publish(work, owner=OWNER)
        github.add_repository(OWNER, NAME, git_dir=served.bare_path(url), default_branch="main")
        installation = github.install(OWNER, [NAME], users={OWNER})
        variables = {
            "SAM_RATE_LIMITS": ",".join(f"{name}=100000/60" for name in LIMITS),
            **github.app_public_vars(),
            "SAM_GITHUB_BASE_URL": served.url,
        }
        data_dir = with_secrets(base / ".sam", github.app_secrets())
        edge = stack.enter_context(running_edge(data_dir, vars=variables))
        signer = EdgeSigner(edge.data_dir, edge.domain)
        stack.callback(signer.close)
        node_token = asyncio.run(scoped_tokens.mint_node_token(signer.deployment, node_id)).token
        double = stack.enter_context(ControlPlaneDouble(node_id=node_id))
        double.git_tokens = EdgeGitTokens(edge, node_token)
        tls = certify(edge, node_id, base)
        env = {
            "SAM_JWKS_URL": f"{signer.issuer}/.well-known/jwks.json",
            "SAM_JWT_ISSUER": signer.issuer,
            "SAM_BASE_IMAGE": BASE_IMAGE,
            "SAM_AGENT_COMMANDS": AGENT_COMMANDS,
            "SAM_TLS_CERT": str(tls.cert),
            "SAM_TLS_KEY": str(tls.key),
        }
        agent = start_agent(double, base / "agent-state", extra_env=env)
        alice = sign_in(edge, OWNER)
        insert_node(edge, alice.id, agent.port, node_id)
        project, local_project = "p" + "7a5c" * 8, "p" + "10ca" * 8
        with closing(database(edge)) as db:
            db.execute(
                "INSERT INTO github_installations "
                "(user_id, installation_id, account_login, account_type) VALUES (?, ?, ?, 'User')",
                (alice.id, installation.id, OWNER),
            )
            db.execute(
                "INSERT INTO projects (id, user_id, name, repository, default_branch, provider, "
                "node_size, agent, permission_mode, created_at, updated_at) "
                "VALUES (?, ?, 'app', ?, 'main', 'local', NULL, ?, 'bypass', ?, ?)",
                (project, alice.id, url, STAND_IN, "2026-01-01", "2026-01-01"),
            )
            db.execute(
                "INSERT INTO projects (id, user_id, name, repository, default_branch, provider, "
                "node_size, agent, permission_mode, created_at, updated_at) "
                "VALUES (?, ?, 'local', ?, 'main', 'local', NULL, ?, 'bypass', ?, ?)",
                (local_project, alice.id, str(work), STAND_IN, "2026-01-01", "2026-01-01"),
            )
            db.commit()
        client = stack.enter_context(as_member(edge, alice))
        stage = Stage(
            edge,
            github,
            served,
            served.bare_path(url),
            double,
            node_token,
            project,
            local_project,
            client,
            stack,
            variables,
        )
        try:
            yield stage
        finally:
            edge = stage.edge  # the one running now, if a test restarted it
            with closing(database(edge)) as db:
                made = [row[0] for row in db.execute("SELECT id FROM workspaces")]
            for workspace_id in made:
                client.delete(f"/api/workspaces/{workspace_id}")
            agent.stop()
            for workspace_id in made:
                remove_labelled(f"sam.workspace={workspace_id}")


def test_a_task_ends_in_one_pull_request_with_its_change_and_a_stopped_workspace(
    stage: Stage,
) -> None:
    main_before = stage.heads()["main"]
    message = "run printf 'made by the task' > CHANGE.md"
    made = stage.client.post(f"/api/projects/{stage.project}/tasks", json={"message": message})
    assert made.status_code == 201, made.text
    task = made.json()
    assert task["status"] == "running" and task["permission_mode"] == "bypass"
    run = stage.run(task)
    stage.double.link_chat(task["chat_id"], run["workspace_id"])

    def turn_ended() -> bool:
        frames = [m["frame"] for m in stage.double.messages_of(task["chat_id"])]
        return any(frame["type"] == "turn_ended" for frame in frames)

    wait_for(turn_ended, "the agent's turn to end", FRAMES_TIMEOUT_SECONDS)
    stage.relay(run["workspace_id"], task["chat_id"])

    def ended() -> dict[str, Any] | None:
        shown = stage.task(task["id"])
        return shown if shown["status"] != "running" else None

    done = wait_for(ended, "the task to end", DONE_TIMEOUT_SECONDS)
    assert done["status"] == "completed", done
    assert [(h["from"], h["to"]) for h in done["history"]] == [
        (None, "queued"),
        ("queued", "running"),
        ("running", "completed"),
    ]
    # The branch holds the change and nothing else; nothing else changed anywhere.
    heads = stage.heads()
    assert heads.keys() == {"main", task["branch"]} and heads["main"] == main_before
    assert stage.changed("main", task["branch"]) == {"CHANGE.md": "A"}
    assert stage.show(task["branch"], "CHANGE.md") == "made by the task"
    # One pull request, against the default branch, and its link in the chat.
    [pull] = stage.github.repositories[f"{OWNER}/{NAME}"].pulls
    assert (pull["head"]["ref"], pull["base"]["ref"]) == (task["branch"], "main")
    assert done["pull_request_url"] == pull["html_url"]
    history = stage.client.get(
        f"/api/projects/{stage.project}/chats/{task['chat_id']}/messages", params={"after": 0}
    ).json()["messages"]
    posted = [
        m["frame"]["detail"]
        for m in history
        if m["frame"]["type"] == "run" and m["frame"]["step"] == "posted"
    ]
    assert posted[-1] == f"Your pull request: {pull['html_url']}"
    workspace = stage.client.get(f"/api/workspaces/{run['workspace_id']}").json()
    assert workspace["status"] == "stopped"


def ended_task(
    stage: Stage, message: str, project: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A task submitted, its turn's end relayed, and ended: (task, run)."""
    project = project or stage.project
    made = stage.client.post(f"/api/projects/{project}/tasks", json={"message": message})
    assert made.status_code == 201, made.text
    task = made.json()
    run = stage.run(task)
    stage.double.link_chat(task["chat_id"], run["workspace_id"])

    def turn_ended() -> bool:
        frames = [m["frame"] for m in stage.double.messages_of(task["chat_id"])]
        return any(frame["type"] == "turn_ended" for frame in frames)

    wait_for(turn_ended, "the agent's turn to end", FRAMES_TIMEOUT_SECONDS)
    stage.relay(run["workspace_id"], task["chat_id"])
    done = wait_for(
        lambda: (shown := stage.task(task["id"]))["status"] != "running" and shown,
        "the task to end",
        DONE_TIMEOUT_SECONDS,
    )
    return done, run


@pytest.mark.parametrize("step", ["push", "pull_request"])
def test_a_step_run_again_after_its_side_effect_makes_nothing_twice(
    stage: Stage, step: str
) -> None:
    """The edge killed after the step's side effect and before its result was persisted:
    the run's storage and the task rolled back to before the step, the alarm runs it again."""
    task, run = ended_task(stage, f"run printf 'once for {step}' > {step}.md")
    assert task["status"] == "completed", task
    pushed = stage.heads()[task["branch"]]
    pulls = stage.github.repositories[f"{OWNER}/{NAME}"].pulls
    before = len(pulls)
    # The workspace runs again (its files kept), as it did when the step ran; the agent's
    # ready callback (to the double) is relayed to the edge.
    readies = len(stage.double.callbacks("ready", run["workspace_id"]))
    restarted = stage.client.post(f"/api/workspaces/{run['workspace_id']}/restart")
    assert restarted.status_code == 202, restarted.text
    ready = wait_for(
        lambda: stage.double.callbacks("ready", run["workspace_id"])[readies:],
        "the workspace to run again",
        DONE_TIMEOUT_SECONDS,
    )[-1]
    with stage.edge.client("api") as client:
        answer = client.post(
            f"/api/workspaces/{run['workspace_id']}/ready",
            json=ready.body,
            headers=bearer(stage.node_token),
        )
    assert answer.status_code == 200, answer.text
    again = TASK_STEPS[TASK_STEPS.index(Step(step)) :]

    def roll_back() -> None:
        storage, at_ms = runner_storage(stage.edge.data_dir, run["run_id"]), time.time() * 1000
        marks = ", ".join("?" for _ in again)
        storage.sql.exec(
            "UPDATE steps SET status = 'pending', started_at = NULL, detail = NULL "
            f"WHERE name IN ({marks})",
            *(str(name) for name in again),
        )
        storage.sql.exec(
            "UPDATE run SET status = 'starting', error = NULL, alarm_at = ?", at_ms / 1000
        )
        storage.store_alarm(int(at_ms), retries=0)
        storage.close()
        scheduler = AlarmScheduler(stage.edge.data_dir / "do", SystemClock())
        scheduler.schedule("TaskRunner", runner_id(stage.edge.data_dir, run["run_id"]), int(at_ms))
        asyncio.run(scheduler.stop())  # closes its index: the restarted edge reads it
        with closing(database(stage.edge)) as db:
            db.execute(
                "UPDATE tasks SET status = 'running', step = ?, pull_request_url = NULL "
                "WHERE id = ?",
                (step, task["id"]),
            )
            db.commit()

    stage.crash_edge(roll_back)
    done = wait_for(
        lambda: (shown := stage.task(task["id"]))["status"] != "running" and shown,
        "the task to end again",
        DONE_TIMEOUT_SECONDS,
    )
    assert done["status"] == "completed", done
    assert stage.heads()[task["branch"]] == pushed  # the same commit: pushed once
    assert stage.changed("main", task["branch"]) == {f"{step}.md": "A"}
    assert len(pulls) == before  # the open pull request was found, not opened again
    assert done["pull_request_url"] == pulls[-1]["html_url"]
    workspace = stage.client.get(f"/api/workspaces/{run['workspace_id']}").json()
    assert workspace["status"] == "stopped"


def hanging_task(stage: Stage) -> tuple[dict[str, Any], dict[str, Any]]:
    """A task whose agent never ends its turn, once its run waits for that: (task, run)."""
    made = stage.client.post(f"/api/projects/{stage.project}/tasks", json={"message": "hang"})
    assert made.status_code == 201, made.text
    task = made.json()
    run = wait_for(
        lambda: (shown := stage.run(task))["step"] == "turn_ended" and shown,
        "the run to wait for the turn's end",
        DONE_TIMEOUT_SECONDS,
    )
    return task, run


def nothing_pushed(stage: Stage, task: dict[str, Any], run: dict[str, Any]) -> None:
    assert task["branch"] not in stage.heads()
    pulls = stage.github.repositories[f"{OWNER}/{NAME}"].pulls
    assert all(pull["head"]["ref"] != task["branch"] for pull in pulls)
    workspace = stage.client.get(f"/api/workspaces/{run['workspace_id']}").json()
    assert workspace["status"] == "stopped"


def test_cancel_while_the_agent_works_stops_everything_and_pushes_nothing(
    stage: Stage,
) -> None:
    task, run = hanging_task(stage)
    cancelled = stage.client.post(f"/api/tasks/{task['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    shown = cancelled.json()
    assert shown["status"] == "cancelled" and shown["history"][-1]["reason"] == "Cancelled by you."
    assert stage.run(task)["status"] == "stopped"
    nothing_pushed(stage, shown, run)


def test_a_turn_that_never_ends_fails_the_task_at_its_timeout_and_cleans_up(
    stage: Stage,
) -> None:
    task, run = hanging_task(stage)

    def an_hour_later() -> None:
        """The turn_ended step started over an hour ago (its timeout), its alarm due now."""
        storage, at_ms = runner_storage(stage.edge.data_dir, run["run_id"]), time.time() * 1000
        storage.sql.exec(
            "UPDATE steps SET started_at = ? WHERE name = 'turn_ended'",
            at_ms / 1000 - STEP_TIMEOUT_SECONDS["turn_ended"] - 1,
        )
        storage.sql.exec("UPDATE run SET alarm_at = ?", at_ms / 1000)
        storage.store_alarm(int(at_ms), retries=0)
        storage.close()
        scheduler = AlarmScheduler(stage.edge.data_dir / "do", SystemClock())
        scheduler.schedule("TaskRunner", runner_id(stage.edge.data_dir, run["run_id"]), int(at_ms))
        asyncio.run(scheduler.stop())

    stage.crash_edge(an_hour_later)
    failed = wait_for(
        lambda: (shown := stage.task(task["id"]))["status"] != "running" and shown,
        "the task to fail",
        DONE_TIMEOUT_SECONDS,
    )
    assert failed["status"] == "failed" and failed["step"] == "turn_ended"
    assert "took over 60 minutes" in failed["error"]
    wait_for(
        lambda: (
            stage.client.get(f"/api/workspaces/{run['workspace_id']}").json()["status"] == "stopped"
        ),
        "the workspace to be stopped",
        DONE_TIMEOUT_SECONDS,
    )
    nothing_pushed(stage, failed, run)


def test_a_task_on_a_repository_not_on_github_is_refused_at_submit(stage: Stage) -> None:
    """Its push could never succeed: refused before any agent works, nothing made."""
    path = f"/api/projects/{stage.local_project}/tasks"
    before = stage.client.get(path).json()
    refused = stage.client.post(path, json={"message": "run printf 'x' > local.md"})
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "task_cannot_push"
    message = refused.json()["message"]
    assert "is not a repository on the configured GitHub" in message
    assert "Start a chat in this project instead" in message
    assert stage.client.get(path).json() == before
