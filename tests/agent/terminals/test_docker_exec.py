"""DockerExecProcess and the Engine API client on the real Docker Engine.

The terminal protocol over them (input, resize, UTF-8, reattach, close) is tested through
the TerminalManager in test_terminals.py; these are what only the process itself shows.
"""

from __future__ import annotations

import asyncio
import signal
import subprocess
from pathlib import Path

import pytest

from agent.docker_api import EngineAPI, EngineError, engine_socket
from agent.shell import ShellCommand
from agent.terminals.docker_exec import DockerExecProcess, signal_in_container
from agent.terminals.pty import ExitStatus, SpawnError
from tests.agent.process_output import TIMEOUT_SECONDS, Output

POLL_SECONDS = 0.1  # `docker exec ps` per poll
SHELL = ["bash", "--norc", "--noprofile", "-i"]


async def start(container: str, argv: list[str], **env: str) -> tuple[DockerExecProcess, Output]:
    output = Output()
    command = ShellCommand(argv, {"PS1": "$ ", **env}, container=container)
    return await DockerExecProcess.start(command, 80, 24, output), output


def processes(container: str) -> str:
    ps = ["docker", "exec", container, "ps", "-eo", "pid,stat,args"]
    return subprocess.run(ps, capture_output=True, text=True, check=True).stdout


async def until_running(container: str, args: str) -> None:
    async with asyncio.timeout(TIMEOUT_SECONDS):
        while args not in await asyncio.to_thread(processes, container):
            await asyncio.sleep(POLL_SECONDS)


def test_docker_host_names_the_socket() -> None:
    assert engine_socket({}) == "/var/run/docker.sock"
    assert engine_socket({"DOCKER_HOST": "unix:///run/user/1000/docker.sock"}) == (
        "/run/user/1000/docker.sock"
    )
    with pytest.raises(EngineError, match="not a unix:// socket"):
        engine_socket({"DOCKER_HOST": "tcp://10.0.0.2:2375"})


async def test_an_unreachable_engine_is_a_spawn_error(
    container: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/nothing.sock")
    with pytest.raises(SpawnError, match=r"cannot reach the Docker Engine at .*nothing\.sock"):
        await start(container, SHELL)


async def test_a_program_the_container_lacks_ends_with_the_engines_message(
    container: str,
) -> None:
    proc, output = await start(container, ["no-such-program-sam"])
    assert await asyncio.wait_for(proc.wait(), TIMEOUT_SECONDS) == ExitStatus(126, None)
    assert b'"no-such-program-sam": executable file not found' in output.data
    proc.close()


async def test_the_stream_ends_with_the_shell_even_if_a_job_keeps_the_tty(
    container: str,
) -> None:
    proc, output = await start(container, SHELL)
    await output.wait_for(b"$ ")
    proc.write(b"sleep 4545 & exit 4\r")
    assert await asyncio.wait_for(proc.wait(), TIMEOUT_SECONDS) == ExitStatus(4, None)
    proc.close()
    assert "sleep 4545" in processes(container)  # a background job stays, as with ssh
    subprocess.run(["docker", "exec", container, "pkill", "-f", "sleep 4545"], check=False)


async def test_paused_reading_holds_the_process_back_and_loses_nothing(container: str) -> None:
    proc, output = await start(container, SHELL)
    await output.wait_for(b"$ ")
    proc.pause_reading()
    proc.write(b"head -c 3000000 /dev/zero | tr '\\0' Q; echo END$((1+1))\r")
    await asyncio.sleep(1.0)
    held = len(output.data)
    assert held < 3_000_000  # the buffers on the way filled up and the shell waits
    proc.resume_reading()
    await output.wait_for(b"END2")
    assert output.data.count(b"Q") == 3_000_000 + 1  # + the echoed command's
    proc.write(b"exit\r")
    await asyncio.wait_for(proc.wait(), TIMEOUT_SECONDS)
    proc.close()


async def test_the_in_container_ladder_reaches_the_session_by_its_tag(container: str) -> None:
    """What an agent that may not signal the container's processes from the host (not root,
    only in the docker group) falls back to."""
    tag = "SAM_TERMINAL_SESSION=ws-x:in-container"
    proc, output = await start(container, SHELL, SAM_TERMINAL_SESSION="ws-x:in-container")
    await output.wait_for(b"$ ")
    proc.write(b"trap 'echo got-$((1+1))' HUP; sleep 4646\r")
    await until_running(container, "sleep 4646")  # the trap is set before it starts
    api = await EngineAPI.connect({})
    await signal_in_container(api, container, "", "SAM_TERMINAL_SESSION=ws-x:other", 9)
    await signal_in_container(api, container, "", tag, signal.SIGHUP)
    await output.wait_for(b"got-2")  # the shell's group and the foreground job's got it
    assert "sleep 4646" not in processes(container)
    assert proc.status is None  # the shell caught it
    await signal_in_container(api, container, "", tag, signal.SIGKILL)
    status = await asyncio.wait_for(proc.wait(), TIMEOUT_SECONDS)
    assert status == ExitStatus(137, None)  # not our ladder: the Engine's code as it is
    proc.close()
