"""The stand-in ACP agent (stand_in_agent.mjs) in a real container of the base image, on the
Node of the read-only tools mount, through the real ContainerLauncher (`docker exec -i`):
fs/read_text_file and fs/write_text_file run in the container as its user, with its paths;
an agent that ignores the end of its input and SIGTERM is stopped by SIGKILL, and nothing
of the session is left in the container."""

import asyncio
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from agent.config import CHECKOUT_CONTAINER_TOOLS
from agent.persistence import Store
from agent.sessions.container import ContainerLauncher, ContainerUser
from agent.sessions.session import AgentSession
from agent.sessions.tools import NODE, tools_mount
from agent.terminals.manager import TerminalManager
from agent.workspaces.containers import DockerEngine
from tests.agent.conftest import BASE_IMAGE
from tests.agent.sessions.test_faults import config, frames, no_shell, turn, until
from tests.support.container_tools import require_container_tools

STAND_IN_DIR = "/opt/stand-in"
USER = "sam"  # the base image's user (uid 1000)


@pytest.fixture
def container() -> Iterator[str]:
    require_container_tools()
    engine = DockerEngine()
    mount = asyncio.run(tools_mount(engine, CHECKOUT_CONTAINER_TOOLS))
    engine.close()
    here = Path(__file__).parent
    tools = mount.replace(",external=true", "")  # `docker run` takes the volume as it is
    stand_in = f"type=bind,source={here},target={STAND_IN_DIR},readonly"
    script = "printf 'one\\ntwo\\nthree\\nfour\\n' > /tmp/lines.txt; exec sleep infinity"
    mounts = ["--mount", tools, "--mount", stand_in]
    run = subprocess.run(
        [
            "docker",
            "run",
            "-d",
            "--rm",
            "--network",
            "none",
            *mounts,
            BASE_IMAGE,
            "sh",
            "-c",
            script,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    container_id = run.stdout.strip()
    yield container_id
    subprocess.run(["docker", "rm", "-f", container_id], capture_output=True)


def in_container(container: str, *argv: str) -> str:
    return subprocess.run(
        ["docker", "exec", container, *argv], capture_output=True, text=True
    ).stdout


async def test_fs_methods_and_the_stop_ladder_in_a_container(
    container: str, store: Store, tmp_path: Path
) -> None:
    target = ContainerUser(container=container, user=USER, folder="/tmp", env={})
    record = store.add_agent_session("as-1", "ws-1", "claude-code", "ask", "starting")
    cfg = config(tmp_path)
    terminals = TerminalManager(cfg, store, no_shell)
    session = AgentSession(record, store, cfg, ContainerLauncher(target), "/tmp", terminals)
    await session.start([NODE, f"{STAND_IN_DIR}/stand_in_agent.mjs"], {"EXTRA": "1"})
    started = frames(store)[0]
    assert started["agent_info"] == {"name": "stand-in", "version": "1"}

    read = await turn(session, store, "read /tmp/lines.txt")
    said: dict[str, Any] = json.loads(read[1]["update"]["content"]["text"])
    assert said["result"] == {"content": "two\nthree\n"}  # line 2, limit 2
    missing = await turn(session, store, "read /tmp/nope.txt")
    assert json.loads(missing[1]["update"]["content"]["text"])["error"]["code"] == -32002
    await turn(session, store, "write /tmp/made.txt made in the container")
    assert in_container(container, "cat", "/tmp/made.txt") == "made in the container"
    assert in_container(container, "stat", "-c", "%U", "/tmp/made.txt").strip() == USER
    refused = await turn(session, store, "write relative.txt x")
    assert json.loads(refused[1]["update"]["content"]["text"])["error"]["code"] == -32602

    # terminal/create: a read-only tab whose command runs in the container, as its user,
    # in the session's folder
    ran = await turn(session, store, "run id -un; pwd; test -f /tmp/made.txt && echo here")
    answer = json.loads(ran[-2]["update"]["content"]["text"])
    assert answer["exit"] == {"exitCode": 0}
    assert answer["output"]["output"].split() == [USER, "/tmp", "here"]
    [tab] = terminals.tabs("ws-1")
    assert (tab["read_only"], tab["owner"]) == (True, "as-1")

    session.prompt("stubborn")
    await asyncio.sleep(0.5)
    await session.stop("requested")
    assert (await until(store, "stopped"))["reason"] == "requested"
    assert "stand_in_agent" not in in_container(container, "ps", "-eo", "args")
