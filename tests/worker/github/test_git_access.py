"""Installation tokens at the git endpoint: real git against `git http-backend` behind the
loopback GitHub's token rules, with tokens minted by the Worker's own code.

A read token clones its repository but cannot push to it; a token for repository A
cannot read repository B; no token is a 401; a write token pushes. The token reaches git
through its environment (an extra Authorization header), never its argv.
"""

import base64
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.git_server import GitServer
from tests.fakes.github import FakeGitHub
from worker.deployment import Deployment
from worker.github.tokens import installation_token


@pytest.fixture(scope="module")
def git_server(github: FakeGitHub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GitServer]:
    root = tmp_path_factory.mktemp("git-server")
    with GitServer(root / "served", access=github.git_access) as server:
        for name in ("app-a", "app-b"):
            work = root / name
            subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
            (work / "README.md").write_text(f"{name}\n")
            git(work, "add", "README.md")
            git(work, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
            url = server.publish(work, owner="dana")
            github.add_repository("dana", name, git_dir=server.bare_path(url))
        github.install("dana", ["app-a", "app-b"], users={"dana"})
        yield server


def git(
    cwd: Path, *args: str, token: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    environ = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd.parent),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    if token is not None:
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        environ |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": "http.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
    return subprocess.run(
        ["git", *args], cwd=cwd, env=environ, capture_output=True, text=True, check=check
    )


def installation(github: FakeGitHub) -> int:
    [found] = [each.id for each in github.installations.values() if each.account == "dana"]
    return found


async def test_a_read_token_clones_its_repository_and_cannot_push(
    github: FakeGitHub, git_server: GitServer, deployment: Deployment, tmp_path: Path
) -> None:
    read = await installation_token(
        deployment, installation(github), repositories=("app-a",), permissions={"contents": "read"}
    )
    url = f"{git_server.url}/dana/app-a.git"

    git(tmp_path, "clone", "-q", url, "clone", token=read.token)
    clone = tmp_path / "clone"
    assert (clone / "README.md").read_text() == "app-a\n"
    (clone / "change.txt").write_text("change\n")
    git(clone, "add", "change.txt")
    git(clone, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "change")

    pushed = git(clone, "push", "origin", "HEAD:refs/heads/sam/task", token=read.token, check=False)
    assert pushed.returncode != 0
    assert "403" in pushed.stderr
    assert "sam/task" not in github.repositories["dana/app-a"].branch_heads()

    # The same push with a write token lands.
    write = await installation_token(
        deployment, installation(github), repositories=("app-a",), permissions={"contents": "write"}
    )
    git(clone, "push", "-q", "origin", "HEAD:refs/heads/sam/task", token=write.token)
    assert "sam/task" in github.repositories["dana/app-a"].branch_heads()


async def test_a_token_for_one_repository_cannot_read_another(
    github: FakeGitHub, git_server: GitServer, deployment: Deployment, tmp_path: Path
) -> None:
    only_a = await installation_token(
        deployment, installation(github), repositories=("app-a",), permissions={"contents": "read"}
    )

    refused = git(
        tmp_path,
        "clone",
        "-q",
        f"{git_server.url}/dana/app-b.git",
        "b",
        token=only_a.token,
        check=False,
    )
    assert refused.returncode != 0
    assert "not found" in refused.stderr.lower()
    assert not (tmp_path / "b" / "README.md").exists()

    anonymous = git(
        tmp_path, "clone", "-q", f"{git_server.url}/dana/app-a.git", "anon", check=False
    )
    assert anonymous.returncode != 0
    assert "could not read Username" in anonymous.stderr or "401" in anonymous.stderr
