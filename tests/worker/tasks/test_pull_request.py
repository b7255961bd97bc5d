"""A task's pull request on the loopback GitHub (its real REST wire format, app JWT and
narrowed installation tokens), through worker/github/pulls.py as the task run's
pull_request step calls it (worker/chats/task_steps.py).

Covers: one pull request against the project's branch, found (not opened again) when the
step runs again after a crash; the repository's default branch without a project branch;
GitHub failing with a 5xx (a transient error the run retries) and then answering; a
rate-limit 403 (the run fails with GitHub's reason and reset time); a repository that is
not on GitHub, or not reachable through the user's own installations.
"""

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fakes.github import FakeGitHub
from tests.worker.github.conftest import make_deployment
from tests.worker.node_support import add_user
from twin import upstream
from twin.clock import ManualClock
from worker.chats.steps import is_transient
from worker.deployment import Deployment
from worker.errors import NotFound, UpstreamFailed
from worker.github import installations
from worker.github.git_tokens import NotOnGitHub
from worker.github.pulls import pull_request
from worker.github.rest import GitHubRateLimited

BRANCH = "sam/fix-the-login-0123abcd"
RATE_LIMITED = (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1767225600"})


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        for owner in ("dana", "erin"):
            fake.add_repository(
                owner,
                "app",
                branches={"main": "a" * 40, "dev": "b" * 40, BRANCH: "c" * 40},
                default_branch="main",
            )
            fake.install(owner, ["app"], users={owner})
        yield fake


@pytest.fixture
async def deployment(github: FakeGitHub, tmp_path: Path) -> AsyncIterator[Deployment]:
    clock = ManualClock(time.time())  # the loopback GitHub checks the app JWT's times
    github.clock = clock.now
    made = make_deployment(github, clock, tmp_path / "deployment")
    yield made
    made.env.DATABASE.close()
    made.env.KV.close()
    await upstream.close()
    github.clock = time.time


@pytest.fixture
async def dana(github: FakeGitHub, deployment: Deployment) -> str:
    user_id = await add_user(deployment.env, "dana")
    [installation] = [i for i in github.installations.values() if i.account == "dana"]
    await installations.record(deployment, user_id, installation.id, "dana", "User")
    return user_id


def url(github: FakeGitHub, owner: str = "dana") -> str:
    return f"{github.url}/{owner}/app.git"


async def test_one_pull_request_is_opened_and_a_run_again_finds_it(
    github: FakeGitHub, deployment: Deployment, dana: str
) -> None:
    pulls = github.repositories["dana/app"].pulls
    pulls.clear()
    first = await pull_request(deployment, dana, url(github), BRANCH, "dev", "Fix it", "Body")
    assert first.opened and first.url == f"{github.url}/dana/app/pull/1"
    again = await pull_request(deployment, dana, url(github), BRANCH, "dev", "Fix it", "Body")
    assert (again.url, again.number, again.opened) == (first.url, first.number, False)
    [pull] = pulls
    assert (pull["base"]["ref"], pull["head"]["ref"], pull["title"]) == ("dev", BRANCH, "Fix it")


async def test_without_a_project_branch_the_repositorys_default_is_the_base(
    github: FakeGitHub, deployment: Deployment, dana: str
) -> None:
    github.repositories["dana/app"].pulls.clear()
    await pull_request(deployment, dana, url(github), BRANCH, None, "Fix it", "Body")
    [pull] = github.repositories["dana/app"].pulls
    assert pull["base"]["ref"] == "main"


async def test_a_5xx_is_transient_and_the_next_attempt_opens_it(
    github: FakeGitHub, deployment: Deployment, dana: str
) -> None:
    github.repositories["dana/app"].pulls.clear()
    github.app_fault = (502, {})
    try:
        with pytest.raises(UpstreamFailed) as failed:
            await pull_request(deployment, dana, url(github), BRANCH, "main", "Fix it", "Body")
        assert is_transient(failed.value) and not isinstance(failed.value, GitHubRateLimited)
        assert github.repositories["dana/app"].pulls == []
    finally:
        github.app_fault = None
    made = await pull_request(deployment, dana, url(github), BRANCH, "main", "Fix it", "Body")
    assert made.opened and len(github.repositories["dana/app"].pulls) == 1


async def test_a_rate_limit_says_when_github_resets_it(
    github: FakeGitHub, deployment: Deployment, dana: str
) -> None:
    github.app_fault = RATE_LIMITED
    try:
        with pytest.raises(GitHubRateLimited) as limited:
            await pull_request(deployment, dana, url(github), BRANCH, "main", "Fix it", "Body")
    finally:
        github.app_fault = None
    assert "rate-limited" in limited.value.message and "1767225600" in limited.value.message


async def test_a_repository_elsewhere_or_of_another_user_gets_no_pull_request(
    github: FakeGitHub, deployment: Deployment, dana: str
) -> None:
    with pytest.raises(NotOnGitHub):
        await pull_request(
            deployment, dana, "https://example.com/dana/app.git", BRANCH, "main", "t", "b"
        )
    with pytest.raises(NotFound):  # erin's repository: dana's installations do not reach it
        await pull_request(deployment, dana, url(github, "erin"), BRANCH, "main", "t", "b")
    assert github.repositories["erin/app"].pulls == []
