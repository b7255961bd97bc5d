"""What bench_tasks.py runs on: the local edge whose GitHub is the loopback one (its App,
REST API and installation tokens) with git on a real git server, a project of a signed-in
user on a repository there (its App installed for that user), and the task's routes.

    with task_world(folder) as world:
        task = world.submit("Add the notes")
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.project_chat_support import ChatBench, bench_on
from tests.browser.test_tasks import PR_OWNER, public_reads, record_installation_of
from tests.e2e.chat_support import ChatUser
from tests.e2e.git_server import GitServer
from tests.fakes.anthropic import ScriptedModel
from tests.fakes.github import FakeGitHub
from tests.fixtures.repos import make_repo
from tests.support.edge import running_edge, with_secrets
from worker.api.ratelimit import LIMITS

LOGIN = "bench-tasker"
REPOSITORY = "app"


@dataclass
class TaskWorld:
    bench: ChatBench
    github: FakeGitHub

    def submit(self, message: str) -> dict[str, Any]:
        """POST …/tasks: the Task, running."""
        path = f"/api/projects/{self.bench.project_id}/tasks"
        return self.bench.user.ok("POST", path, 201, json={"message": message})

    def task(self, task_id: str) -> dict[str, Any]:
        return self.bench.user.ok("GET", f"/api/tasks/{task_id}", 200)

    def cancel(self, task_id: str) -> dict[str, Any]:
        return self.bench.user.ok("POST", f"/api/tasks/{task_id}/cancel", 200)

    def pulls(self) -> list[dict[str, Any]]:
        """The pull requests on the loopback GitHub's repository, oldest first."""
        return list(self.github.repositories[f"{PR_OWNER}/{REPOSITORY}"].pulls)


@contextmanager
def task_world(folder: Path) -> Iterator[TaskWorld]:
    with (
        ScriptedModel() as model,
        FakeGitHub() as github,
        GitServer(folder / "served", public_reads(github)) as git_server,
    ):
        url = git_server.publish(make_repo(folder / "sources", REPOSITORY), owner=PR_OWNER)
        github.add_repository(PR_OWNER, REPOSITORY, git_dir=git_server.bare_path(url))
        installation = github.install(PR_OWNER, [REPOSITORY], users={LOGIN})
        settings = {
            "SAM_RATE_LIMITS": ",".join(f"{name}=100000/60" for name in LIMITS),
            **github.app_public_vars(),
            # git lives on the base URL (as on github.com), the REST API on its own.
            "SAM_GITHUB_BASE_URL": git_server.url,
        }
        data_dir = with_secrets(folder / ".sam", github.app_secrets())
        with running_edge(data_dir, vars=settings) as edge:
            user = ChatUser.sign_in(edge, LOGIN, model)
            record_installation_of(edge, LOGIN, installation.id)
            with bench_on(edge, model, user, url) as bench:
                yield TaskWorld(bench, github)
