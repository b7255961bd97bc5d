"""git's credential helper (tools/container/git-credential-sam.mjs, run by the container
tools' Node) asking the channel's git service, which asks the control plane (the loopback
double, through the agent's real ControlPlane client) for the workspace's read token, with
real git against `git http-backend` behind the loopback GitHub's token rules.

A workspace's network is stood in for by a loopback address and its /32, as in
test_listener.py; git runs on this machine with the environment the agent gives the
container's processes (SAM_CHANNEL_URL, SAM_CHANNEL_TOKEN and the helper as config).
"""

import asyncio
import os
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agent.channel import Channels, WorkspaceChannel
from agent.channel.git_credentials import REFRESH_MARGIN_SECONDS, GitTokens, git_credentials
from agent.config import CHECKOUT_CONTAINER_TOOLS, AgentConfig
from agent.control_plane import ControlPlane, new_session
from agent.sessions.tools import REQUIRED_FILE
from agent.workspaces.git import config_env
from tests.agent.workspaces.git_support import served_repository
from tests.e2e.git_server import GitServer
from tests.fakes.github import FakeGitHub
from tests.fakes.github_app_model import TokenGrant
from tests.fixtures.repos import make_repo
from tests.support.control_plane import ControlPlaneDouble
from wire.git import GitToken

HOST = "127.0.0.1"
NODE = CHECKOUT_CONTAINER_TOOLS / REQUIRED_FILE
HELPER = f"{NODE} {CHECKOUT_CONTAINER_TOOLS / 'git-credential-sam.mjs'}"
WORKSPACE = "w-git"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def served(github: FakeGitHub, tmp_path: Path) -> Iterator[str]:
    with served_repository(github, tmp_path) as (_, url):
        yield url


def grant(github: FakeGitHub, level: str) -> GitToken:
    """A token as the control plane hands it out, honoured by the loopback GitHub."""
    token, expires_at = "ghs_" + secrets.token_hex(18), time.time() + 3600
    github.tokens[token] = TokenGrant(0, ("dana/app",), {"contents": level}, expires_at)
    return GitToken(password=token, expires_at=expires_at)


@pytest.fixture
def control_plane() -> Iterator[ControlPlaneDouble]:
    if not NODE.exists():
        pytest.fail("tools/container is not installed: run scripts/setup")
    with ControlPlaneDouble() as double:
        yield double


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def channel(
    control_plane: ControlPlaneDouble, served: str, clock: Clock, tmp_path: Path
) -> AsyncIterator[WorkspaceChannel]:
    config = AgentConfig.from_environ(
        {
            "SAM_NODE_ID": control_plane.node_id,
            "SAM_CONTROL_PLANE_URL": control_plane.url,
            "SAM_STATE_DIR": str(tmp_path / "state"),
            "SAM_BACKEND": "host",
        }
    )
    (tmp_path / "state").mkdir()
    config.callback_token_file.write_text("callback-token-0\n")
    async with new_session() as session:
        tokens = GitTokens(ControlPlane(config, session), clock)
        repositories = {WORKSPACE: served}
        channels = Channels({"/git": git_credentials(tokens, repositories.get)})
        yield await channels.open(WORKSPACE, host=HOST, subnet=f"{HOST}/32")
        await channels.shutdown()


async def git(
    cwd: Path, *args: str, channel: WorkspaceChannel, token: str | None = None
) -> tuple[int, str]:
    """git as a process in the workspace runs it: SAM's helper, the channel in its env."""
    environment = {
        "PATH": os.environ["PATH"],
        "HOME": str(cwd),
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "SAM_CHANNEL_URL": channel.url(),
        "SAM_CHANNEL_TOKEN": channel.token if token is None else token,
        **config_env({"credential.helper": HELPER, "user.name": "t", "user.email": "t@t"}),
    }
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=environment,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    return process.returncode or 0, output.decode(errors="replace")


async def test_git_fetches_with_the_read_token_and_cannot_push(
    channel: WorkspaceChannel,
    control_plane: ControlPlaneDouble,
    github: FakeGitHub,
    served: str,
    tmp_path: Path,
) -> None:
    control_plane.git_tokens[WORKSPACE] = grant(github, "read")
    status, said = await git(tmp_path, "clone", "-q", served, "clone", channel=channel)
    assert status == 0, said
    clone = tmp_path / "clone"
    assert (clone / "README.md").read_text() == "# app\n"
    assert (await git(clone, "fetch", "-q", "origin", channel=channel))[0] == 0

    await git(clone, "commit", "-q", "--allow-empty", "-m", "mine", channel=channel)
    for ref in ("main", "sam/task-1"):
        status, said = await git(clone, "push", "origin", f"HEAD:{ref}", channel=channel)
        assert status != 0 and "403" in said, said
    assert set(github.repositories["dana/app"].branch_heads()) == {"main"}
    # One token for the clone, the fetch and both pushes: kept in memory, not asked again.
    assert len(control_plane.callbacks("git-token")) == 1
    assert not any(
        control_plane.git_tokens[WORKSPACE].password in path.read_bytes().decode(errors="replace")
        for path in clone.rglob("*")
        if path.is_file()
    )


async def test_a_token_near_its_expiry_is_minted_again(
    channel: WorkspaceChannel,
    control_plane: ControlPlaneDouble,
    github: FakeGitHub,
    served: str,
    clock: Clock,
    tmp_path: Path,
) -> None:
    first = control_plane.git_tokens[WORKSPACE] = grant(github, "read")
    assert (await git(tmp_path, "clone", "-q", served, "one", channel=channel))[0] == 0
    control_plane.git_tokens[WORKSPACE] = grant(github, "read")
    clock.now = first.expires_at - REFRESH_MARGIN_SECONDS + 1
    assert (await git(tmp_path, "clone", "-q", served, "two", channel=channel))[0] == 0
    assert len(control_plane.callbacks("git-token")) == 2


async def test_another_server_never_sees_the_token(
    channel: WorkspaceChannel,
    control_plane: ControlPlaneDouble,
    github: FakeGitHub,
    tmp_path: Path,
) -> None:
    control_plane.git_tokens[WORKSPACE] = grant(github, "read")
    with GitServer(tmp_path / "other", access=github.git_access) as elsewhere:
        url = elsewhere.publish(make_repo(tmp_path, "elsewhere"), owner="dana")
        status, said = await git(tmp_path, "clone", "-q", url, "x", channel=channel)
    assert status != 0
    assert "SAM has a token only for this workspace's repository" in said
    assert control_plane.callbacks("git-token") == []


async def test_without_a_token_or_with_a_wrong_channel_token_git_says_why(
    channel: WorkspaceChannel,
    control_plane: ControlPlaneDouble,
    github: FakeGitHub,
    served: str,
    tmp_path: Path,
) -> None:
    status, said = await git(tmp_path, "clone", "-q", served, "a", channel=channel)
    assert status != 0 and "install the GitHub App" in said, said

    control_plane.git_tokens[WORKSPACE] = grant(github, "read")
    status, said = await git(tmp_path, "clone", "-q", served, "b", channel=channel, token="nope")
    assert status != 0 and "channel token" in said, said
    assert not (tmp_path / "b" / "README.md").exists()
