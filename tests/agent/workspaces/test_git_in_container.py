"""git's read token inside a real workspace container, and SAM's push from outside it.

The real agent (Docker backend, its sandbox firewall) clones the repository from `git
http-backend` behind the loopback GitHub's token rules with the workspace's read token;
inside the container, real git with SAM's credential helper (the tools mount's Node)
gets that token over the workspace's channel, for the workspace's own repository's server
only. The sandbox lets a workspace reach only its channel on this machine (by design:
docs/sandbox.md), so the git server also answers on the container's own loopback, on the
same URL (a socket made in its network namespace, tests/support/container_net.py): git in
the container, as its user with the helper, fetches, and its pushes to the default branch
and to the task branch are both refused (403). A terminal shell's git has the helper too.
The agent's push, with a write token, lands on the task branch only, and the write token
is nowhere in the container (files, process environments, `docker inspect`).
"""

import asyncio
import json
import subprocess
import time
import uuid
from typing import Any

import pytest

from agent.sessions.tools import GIT_CREDENTIAL_HELPER
from agent.workspaces.git import config_env
from tests.agent.conftest import BASE_IMAGE
from tests.agent.sessions.test_gateway import scan_container_for
from tests.agent.workspaces.git_support import grant, heads
from tests.e2e.git_server import GitServer
from tests.fakes.github import FakeGitHub
from tests.support.agent import AgentProcess
from tests.support.container_net import listen_in_container
from tests.support.control_plane import ControlPlaneDouble
from tests.support.terminal_client import TerminalClient
from wire.git import GitToken

READY_TIMEOUT_SECONDS = 180.0
TASK_BRANCH = "sam/edit-notes-5e6f"

pytestmark = pytest.mark.timeout(400)


def channel_env(agent: AgentProcess, workspace_id: str, container: str) -> dict[str, str]:
    """What the agent gives the workspace's processes to reach SAM's git service."""
    stored = json.loads((agent.state_dir / "channels" / f"{workspace_id}.json").read_text())
    inspect = subprocess.run(
        ["docker", "inspect", container], capture_output=True, text=True, check=True
    )
    [network] = json.loads(inspect.stdout)[0]["NetworkSettings"]["Networks"].values()
    return {
        "SAM_CHANNEL_URL": f"http://{network['Gateway']}:{stored['port']}",
        "SAM_CHANNEL_TOKEN": stored["token"],
        "GIT_TERMINAL_PROMPT": "0",
        **config_env({"credential.helper": GIT_CREDENTIAL_HELPER}),
    }


def in_container(
    container: str, user: str, env: dict[str, str], *argv: str, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    """`argv` in the container as `user`, with `env` (the channel's token reaches `docker
    exec` by its environment, not its argv)."""
    names = [option for name in env for option in ("-e", name)]
    return subprocess.run(
        ["docker", "exec", "-i", "-u", user, *names, container, *argv],
        input=stdin,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
    )


def credential_fill(
    container: str, user: str, env: dict[str, str], host: str
) -> subprocess.CompletedProcess[str]:
    """`git credential fill` in the container, as git asks before a fetch from `host`."""
    request = f"protocol=http\nhost={host}\n\n"
    return in_container(container, user, env, "git", "credential", "fill", stdin=request)


def test_the_helper_hands_out_the_read_token_and_the_write_token_never_enters(
    agent_factory: Any,
    control_plane: ControlPlaneDouble,
    github: FakeGitHub,
    served: tuple[GitServer, str],
) -> None:
    server, url = served
    workspace_id = f"ws-{uuid.uuid4().hex[:8]}"
    read = grant(github, "read")
    control_plane.git_tokens[workspace_id] = GitToken(password=read, expires_at=time.time() + 3600)
    agent: AgentProcess = agent_factory(backend="docker", extra_env={"SAM_BASE_IMAGE": BASE_IMAGE})
    with agent.client() as client:
        answer = client.post("/workspaces", json={"id": workspace_id, "repository": url})
        assert answer.status_code == 202, answer.text
    try:
        control_plane.wait_for("ready", target=workspace_id, timeout=READY_TIMEOUT_SECONDS)
        with agent.client() as client:
            workspace = client.get(f"/workspaces/{workspace_id}").json()
        container, user = workspace["container_id"], workspace["remote_user"]
        env = channel_env(agent, workspace_id, container)
        host = url.split("/")[2]

        filled = credential_fill(container, user, env, host)
        assert filled.returncode == 0, filled.stderr
        assert f"password={read}" in filled.stdout.splitlines()
        assert "username=x-access-token" in filled.stdout.splitlines()
        # Another server: the helper gets nothing, so its server never sees the token.
        elsewhere = credential_fill(container, user, env, "github.example:443")
        assert elsewhere.returncode != 0 and read not in elsewhere.stdout
        assert "only for this workspace's repository" in elsewhere.stderr
        # A wrong channel token: refused by the channel.
        wrong = credential_fill(container, user, {**env, "SAM_CHANNEL_TOKEN": "x" * 43}, host)
        assert wrong.returncode != 0 and read not in wrong.stdout

        # git in the container, as its user with the helper, on the same URL: the git
        # server answers on the container's own loopback too (the sandbox admits nothing
        # from a workspace to this machine but its channel). It fetches and pushes nowhere.
        server.serve_socket(listen_in_container(container, server.port))
        folder = workspace["remote_folder"]
        fetched = in_container(container, user, env, "git", "-C", folder, "fetch", "origin")
        assert fetched.returncode == 0, fetched.stderr
        identity = ["-c", "user.name=u", "-c", "user.email=u@u"]
        committed = in_container(
            container,
            user,
            env,
            "git",
            "-C",
            folder,
            *identity,
            "commit",
            "-qm",
            "x",
            "--allow-empty",
        )
        assert committed.returncode == 0, committed.stderr
        for ref in ("main", TASK_BRANCH):
            pushed = in_container(
                container, user, env, "git", "-C", folder, "push", "origin", f"HEAD:{ref}"
            )
            assert pushed.returncode != 0 and "403" in pushed.stderr, pushed.stderr
        assert set(heads(server, url)) == {"main"}

        # SAM's push, from outside the container, with a write token.
        before = heads(server, url)
        edit = f"echo edited in the container > {folder}/notes.txt"
        subprocess.run(["docker", "exec", "-u", user, container, "sh", "-c", edit], check=True)
        write = grant(github, "write")
        body = {
            "branch": TASK_BRANCH,
            "message": "Edit the notes",
            "remote_url": url,
            "token": write,
            "author_name": "SAM",
            "author_email": "sam@example.com",
        }
        with agent.client() as client:
            pushed = client.post(f"/workspaces/{workspace_id}/git/push", json=body)
        assert pushed.status_code == 200, pushed.text
        assert heads(server, url) == {**before, TASK_BRANCH: pushed.json()["commit"]}
        # The container's user still owns its repository: it commits after SAM did.
        commit = (
            f"cd {folder} && git -c user.name=u -c user.email=u@u commit -qm after --allow-empty"
        )
        subprocess.run(["docker", "exec", "-u", user, container, "sh", "-c", commit], check=True)
        scan_container_for(write, container)
        assert write not in agent.log()

        # A terminal's shell gets the helper too: its git asks the channel for the token.
        asyncio.run(terminal_git(agent, control_plane, workspace_id, host))
    finally:
        with agent.client() as client:
            deleted = client.delete(f"/workspaces/{workspace_id}")
            assert deleted.status_code == 200, agent.log()[-6000:]


async def terminal_git(
    agent: AgentProcess, control_plane: ControlPlaneDouble, workspace_id: str, host: str
) -> None:
    """In a terminal shell of the workspace, git is configured with SAM's helper, and a
    credential fill for `host` gets a password (printed as a count, not the token)."""
    url = f"{agent.ws_url}/workspaces/{workspace_id}/terminal/ws"
    token = control_plane.terminal_token(workspace_id)
    fill = f"printf 'protocol=http\\nhost={host}\\n\\n' | git credential fill"
    async with TerminalClient.connect(url, token=token) as terminal:
        session = await terminal.create()
        await terminal.run(session, f"{fill} | grep -c '^password=.' | sed 's/^/filled=/'")
        await terminal.wait_for_line(session, b"filled=1")
        await terminal.run(session, "git config --get credential.helper | sed 's/^/helper=/'")
        await terminal.wait_for_line(session, f"helper={GIT_CREDENTIAL_HELPER}".encode())
