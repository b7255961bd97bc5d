"""`POST /api/workspaces/{id}/git-token` through the real local edge, with the loopback GitHub
minting the tokens and `git http-backend` behind its token rules as GitHub's git endpoint
(SAM_GITHUB_BASE_URL points there, as https://github.com serves both the site and git).

The workspace's node gets a read token for the workspace's own repository: it clones, it
cannot push. Nobody gets one for a repository the workspace owner's installations do not
reach, another node's token gets nothing, and a repository elsewhere has no token.
"""

import asyncio
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from tests.e2e.git_server import GitServer
from tests.fakes.github import FakeGitHub
from tests.support.edge import Edge, running_edge, signed_in, with_secrets
from tests.support.placed import PlacedWorkspace
from tests.worker.github.test_git_access import git
from worker.github import installations


@pytest.fixture(scope="module")
def served(github: FakeGitHub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    root = tmp_path_factory.mktemp("git-token")
    with GitServer(root / "served", access=github.git_access) as server:
        work = root / "app"
        subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
        (work / "README.md").write_text("dana's app\n")
        git(work, "add", "README.md")
        git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
        url = server.publish(work, owner="dana")
        github.add_repository("dana", "app", git_dir=server.bare_path(url))
        github.install("dana", ["app"], users={"dana"})
        yield server


@pytest.fixture(scope="module")
def edge(
    tmp_path_factory: pytest.TempPathFactory, github: FakeGitHub, served: GitServer
) -> Iterator[Edge]:
    data_dir = with_secrets(
        tmp_path_factory.mktemp("git-token-edge") / ".sam", github.app_secrets()
    )
    variables = {
        **github.vars(users="dana, eve"),
        **github.app_public_vars(),
        "SAM_GITHUB_BASE_URL": served.url,
    }
    with running_edge(data_dir, vars=variables) as running:
        yield running


class Placed(PlacedWorkspace):
    """`login`'s node and workspace on `repository`, with `login`'s installations recorded."""

    def __init__(self, edge: Edge, github: FakeGitHub, login: str, suffix: str, repo: str) -> None:
        super().__init__(edge, login, suffix, repo)
        for each in github.installations.values():
            if login in each.users:
                recorded = installations.record(
                    self.signer.deployment, self.user_id, each.id, each.account, each.account_type
                )
                asyncio.run(recorded)

    def git_token(self, edge: Edge, token: str | None = "") -> httpx.Response:
        token = self.node_token if token == "" else token
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        with edge.client("api") as api:
            return api.post(f"/api/workspaces/{self.workspace_id}/git-token", headers=headers)


def test_the_workspace_gets_a_read_token_for_its_own_repository(
    edge: Edge, github: FakeGitHub, served: GitServer, tmp_path: Path
) -> None:
    url = f"{served.url}/dana/app.git"
    with closing(signed_in(edge, "dana")):
        placed = Placed(edge, github, "dana", "0123456789ab", url)
        reply = placed.git_token(edge)
        placed.close()
    assert reply.status_code == 200, reply.text
    assert reply.headers["cache-control"] == "no-store"
    body = reply.json()
    assert body["username"] == "x-access-token"
    assert github.token_requests[-1]["repositories"] == ["app"]
    assert github.token_requests[-1]["permissions"] == {"contents": "read"}

    git(tmp_path, "clone", "-q", url, "clone", token=body["password"])
    clone = tmp_path / "clone"
    assert (clone / "README.md").read_text() == "dana's app\n"
    git(
        clone,
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "commit",
        "-q",
        "--allow-empty",
        "-m",
        "x",
    )
    for ref in ("main", "sam/task"):
        pushed = git(
            clone, "push", "origin", f"HEAD:refs/heads/{ref}", token=body["password"], check=False
        )
        assert pushed.returncode != 0 and "403" in pushed.stderr
    assert set(github.repositories["dana/app"].branch_heads()) == {"main"}
    assert body["password"] not in edge.log()


def test_nobody_gets_a_token_for_a_repository_that_is_not_theirs(
    edge: Edge, github: FakeGitHub, served: GitServer
) -> None:
    dana_url = f"{served.url}/dana/app.git"
    with closing(signed_in(edge, "dana")), closing(signed_in(edge, "eve")):
        danas = Placed(edge, github, "dana", "a0a0a0a0a0a0", dana_url)
        # eve's workspace names dana's repository: no installation of eve's reaches it.
        eves = Placed(edge, github, "eve", "b0b0b0b0b0b0", dana_url)
        elsewhere = Placed(edge, github, "dana", "c0c0c0c0c0c0", "https://gitlab.example/o/r")
        refused = eves.git_token(edge)
        assert (refused.status_code, refused.json()["error"]) == (404, "repository_not_found")
        # eve's node asking for dana's workspace; no token at all.
        assert danas.git_token(edge, eves.node_token).status_code == 403
        assert danas.git_token(edge, None).status_code == 401
        other = elsewhere.git_token(edge)
        assert (other.status_code, other.json()["error"]) == (409, "repository_not_on_github")
        assert "Clone it without one" in other.json()["message"]
        for made in (danas, eves, elsewhere):
            made.close()
