"""git's read token inside a real workspace container, and SAM's push from outside it.

The real agent (Docker backend, its sandbox firewall) clones the repository from `git
http-backend` behind the loopback GitHub's token rules with the workspace's read token;
inside the container, real git with SAM's credential helper (the tools mount's Node)
gets that token over the workspace's channel, for the workspace's own repository's server
only. The sandbox lets a workspace reach only its channel on this machine, so the git
server on loopback is out of the container's reach: the token the helper handed out is
then used from this machine, where it fetches and cannot push. The agent's push, with a
write token, lands on the task branch only, and the write token is nowhere in the
container (files, process environments, `docker inspect`).
"""

import asyncio
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from agent.sessions.tools import GIT_CREDENTIAL_HELPER
from agent.workspaces.git import CREDENTIAL_HELPER, TOKEN_VARIABLE, config_env
from tests.agent.conftest import BASE_IMAGE
from tests.agent.sessions.test_gateway import scan_container_for
from tests.agent.workspaces.git_support import grant, heads
from tests.e2e.git_server import GitServer
from tests.fakes.github import FakeGitHub
from tests.fixtures.repos import git
from tests.support.agent import AgentProcess
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


def credential_fill(container: str, user: str, env: dict[str, str], host: str) -> Any:
    """`git credential fill` in the container, as git asks before a fetch from `host`
    (the channel's token reaches `docker exec` by its environment, not its argv)."""
    argv = ["docker", "exec", "-i", "-u", user]
    for name in env:
        argv += ["-e", name]
    argv += [container, "git", "credential", "fill"]
    return subprocess.run(
        argv,
        input=f"protocol=http\nhost={host}\n\n",
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
    )


def test_the_helper_hands_out_the_read_token_and_the_write_token_never_enters(
    agent_factory: Any,
    control_plane: ControlPlaneDouble,
    github: FakeGitHub,
    served: tuple[GitServer, str],
    tmp_path: Path,
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

        # The token the container got fetches, and pushes nowhere.
        clone = tmp_path / "with-the-read-token"
        token_env = {TOKEN_VARIABLE: read, **config_env({"credential.helper": CREDENTIAL_HELPER})}
        subprocess.run(["git", "clone", "-q", url, str(clone)], env=git_env(token_env), check=True)
        git(clone, "commit", "-q", "--allow-empty", "-m", "from the container's token")
        for ref in ("main", TASK_BRANCH):
            pushed = subprocess.run(
                ["git", "-C", str(clone), "push", "origin", f"HEAD:refs/heads/{ref}"],
                env=git_env(token_env),
                capture_output=True,
                text=True,
            )
            assert pushed.returncode != 0 and "403" in pushed.stderr, pushed.stderr
        assert set(heads(server, url)) == {"main"}

        # SAM's push, from outside the container, with a write token.
        before = heads(server, url)
        folder = workspace["remote_folder"]
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


def git_env(extra: dict[str, str]) -> dict[str, str]:
    return {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "GIT_TERMINAL_PROMPT": "0", **extra}
