"""The agent's git routes with real git: GET /workspaces/{id}/git and the commit-and-push
SAM makes outside the container, against `git http-backend` behind the loopback GitHub's
token rules (a read token cannot push; a token reaches only its repository).

The workspace runs on the host backend (the checkout is all these routes touch); its
repository is the served bare repository's path, and pushes go to its HTTP URL.
"""

import time
from pathlib import Path

import httpx
import pytest

from tests.agent.test_server import assert_json_error, create_running
from tests.agent.workspaces.git_support import grant, heads
from tests.e2e.git_server import GitServer
from tests.fakes.github import FakeGitHub
from tests.fixtures.repos import git, make_repo
from tests.support.agent import AgentProcess
from tests.support.control_plane import ControlPlaneDouble
from tests.support.wait import wait_for
from wire.git import GitToken

WORKSPACE = "ws-1"
TASK_BRANCH = "sam/fix-readme-1a2b"
READY_TIMEOUT_SECONDS = 60.0


def push_body(url: str, token: str, **overrides: str) -> dict[str, str]:
    return {
        "branch": TASK_BRANCH,
        "message": "Fix the README",
        "remote_url": url,
        "token": token,
        "author_name": "SAM",
        "author_email": "sam@example.com",
        **overrides,
    }


@pytest.fixture
def checkout(agent: AgentProcess, served: tuple[GitServer, str]) -> Path:
    server, url = served
    workspace = create_running(agent, server.bare_path(url), WORKSPACE)
    return Path(workspace["remote_folder"])


def test_push_commits_the_work_and_lands_only_on_the_named_branch(
    agent: AgentProcess, served: tuple[GitServer, str], github: FakeGitHub, checkout: Path
) -> None:
    server, url = served
    before = heads(server, url)
    (checkout / "README.md").write_text("# app, fixed\n")
    (checkout / "new.txt").write_text("added by the agent\n")
    write = grant(github, "write")
    with agent.client() as client:
        state = client.get(f"/workspaces/{WORKSPACE}/git").json()
        assert state["dirty"] is True and state["branch"] == "main"
        assert state["unpushed"] == 0

        pushed = client.post(f"/workspaces/{WORKSPACE}/git/push", json=push_body(url, write))
        assert pushed.status_code == 200, pushed.text
        result = pushed.json()
        assert result["pushed"] is True and result["branch"] == TASK_BRANCH

        after = heads(server, url)
        assert after == {**before, TASK_BRANCH: result["commit"]}  # main unchanged
        bare = server.bare_path(url)
        assert git(bare, "show", f"{TASK_BRANCH}:new.txt") == "added by the agent\n"
        assert git(bare, "log", "-1", "--format=%an <%ae> %s", TASK_BRANCH).strip() == (
            "SAM <sam@example.com> Fix the README"
        )
        state = client.get(f"/workspaces/{WORKSPACE}/git").json()
        assert (state["dirty"], state["unpushed"], state["head"]) == (False, 0, result["commit"])

        # Again: the branch already holds the commit.
        again = client.post(f"/workspaces/{WORKSPACE}/git/push", json=push_body(url, write))
        assert again.json() == result
        assert heads(server, url) == after
    assert write not in agent.log()


def test_nothing_to_commit_and_nothing_to_push(
    agent: AgentProcess, served: tuple[GitServer, str], github: FakeGitHub, checkout: Path
) -> None:
    server, url = served
    before = heads(server, url)
    with agent.client() as client:
        answer = client.post(
            f"/workspaces/{WORKSPACE}/git/push", json=push_body(url, grant(github, "write"))
        )
    assert answer.json() == {"commit": None, "branch": TASK_BRANCH, "pushed": False}
    assert heads(server, url) == before


def test_a_read_token_or_another_repositorys_token_cannot_push(
    agent: AgentProcess, served: tuple[GitServer, str], github: FakeGitHub, checkout: Path
) -> None:
    server, url = served
    before = heads(server, url)
    (checkout / "README.md").write_text("changed\n")
    with agent.client() as client:
        for token in (grant(github, "read"), grant(github, "write", "dana/other")):
            refused = client.post(f"/workspaces/{WORKSPACE}/git/push", json=push_body(url, token))
            assert_json_error(refused, 502, "git_failed")
    assert heads(server, url) == before


def test_a_branch_moved_on_by_someone_else_is_not_overwritten(
    agent: AgentProcess,
    served: tuple[GitServer, str],
    github: FakeGitHub,
    checkout: Path,
    tmp_path: Path,
) -> None:
    server, url = served
    bare = server.bare_path(url)
    git(bare, "branch", TASK_BRANCH, "main")
    other = make_repo(tmp_path, "elsewhere")
    git(other, "fetch", "-q", str(bare), TASK_BRANCH)
    git(other, "commit", "-q", "--allow-empty", "-m", "someone else's")
    git(other, "push", "-q", "--force", str(bare), f"HEAD:refs/heads/{TASK_BRANCH}")
    theirs = heads(server, url)[TASK_BRANCH]
    (checkout / "README.md").write_text("mine\n")
    with agent.client() as client:
        refused = client.post(
            f"/workspaces/{WORKSPACE}/git/push", json=push_body(url, grant(github, "write"))
        )
    assert_json_error(refused, 409, "push_rejected")
    assert heads(server, url)[TASK_BRANCH] == theirs


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("branch", "sam/a..b"),
        ("branch", "refs/heads/main"),
        ("branch", "has space"),
        ("branch", "-f"),
        ("message", "   "),
        ("remote_url", "ext::sh -c touch% /tmp/pwned"),
        ("token", "two words"),
    ],
)
def test_bad_push_bodies_are_refused_before_git_runs(
    agent: AgentProcess,
    served: tuple[GitServer, str],
    github: FakeGitHub,
    checkout: Path,
    field: str,
    value: str,
) -> None:
    server, url = served
    before = heads(server, url)
    (checkout / "README.md").write_text("changed\n")
    with agent.client() as client:
        body = {**push_body(url, grant(github, "write")), field: value}
        refused = client.post(f"/workspaces/{WORKSPACE}/git/push", json=body)
        assert field in assert_json_error(refused, 400, "bad_request")["message"]
        assert client.get(f"/workspaces/{WORKSPACE}/git").json()["dirty"] is True
    assert heads(server, url) == before


def test_a_workspace_this_node_does_not_have_is_not_found(
    agent: AgentProcess, served: tuple[GitServer, str], github: FakeGitHub
) -> None:
    _, url = served
    with agent.client() as client:
        assert_json_error(client.get("/workspaces/ws-elsewhere/git"), 404, "workspace_not_found")
        answer = client.post(
            "/workspaces/ws-elsewhere/git/push", json=push_body(url, grant(github, "write"))
        )
        assert_json_error(answer, 404, "workspace_not_found")
    with httpx.Client(base_url=agent.url) as anonymous:
        assert anonymous.get(f"/workspaces/{WORKSPACE}/git").status_code == 401


def test_the_checkouts_hooks_and_config_never_run_with_the_token(
    agent: AgentProcess, served: tuple[GitServer, str], github: FakeGitHub, checkout: Path
) -> None:
    """What runs in the container can write .git: its hooks and helpers must not fire."""
    _, url = served
    witness = checkout.parent / "witness"
    for hook in ("pre-commit", "pre-push", "post-commit"):
        script = checkout / ".git" / "hooks" / hook
        script.write_text(f'#!/bin/sh\nenv >> "{witness}"\n')
        script.chmod(0o755)
    git(checkout, "config", "credential.helper", f"!env >> {witness}; true")
    (checkout / "README.md").write_text("changed\n")
    write = grant(github, "write")
    with agent.client() as client:
        pushed = client.post(f"/workspaces/{WORKSPACE}/git/push", json=push_body(url, write))
    assert pushed.status_code == 200, pushed.text
    assert not witness.exists()


# --- the node's clone of a private repository ----------------------------------------------


def create(agent: AgentProcess, repository: str, workspace_id: str) -> dict:
    with agent.client() as client:
        created = client.post("/workspaces", json={"id": workspace_id, "repository": repository})
        assert created.status_code == 202, created.text
        return wait_for(
            lambda: settled(client.get(f"/workspaces/{workspace_id}").json()),
            f"{workspace_id} running or failed",
            READY_TIMEOUT_SECONDS,
        )


def settled(workspace: dict) -> dict | None:
    return workspace if workspace["state"] in ("running", "error") else None


def test_a_private_repository_clones_with_the_read_token(
    agent: AgentProcess,
    served: tuple[GitServer, str],
    github: FakeGitHub,
    control_plane: ControlPlaneDouble,
) -> None:
    _, url = served
    read = grant(github, "read")
    control_plane.git_tokens["ws-private"] = GitToken(password=read, expires_at=time.time() + 3600)
    workspace = create(agent, url, "ws-private")
    assert workspace["state"] == "running", workspace
    checkout = Path(workspace["remote_folder"])
    assert (checkout / "README.md").read_text() == "# app\n"
    assert [c.target for c in control_plane.callbacks("git-token")] == ["ws-private"]
    for path in checkout.rglob("*"):
        assert not path.is_file() or read.encode() not in path.read_bytes(), path
    assert read not in agent.log()

    # Without a token for it (the double answers 409), the clone fails and says why.
    refused = create(agent, url, "ws-no-token")
    assert refused["state"] == "error"
    assert "could not read Username" in refused["error"] or "401" in refused["error"]
