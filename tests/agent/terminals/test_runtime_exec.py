"""Shells that runc execs into a container, on a TTY whose master the agent holds.

What makes them safe to use instead of the Engine's exec is that a user cannot tell them
apart: same identity, groups, capabilities, seccomp, cgroups, environment, limits and TTY.
Their terminal protocol (input, resize, reattach, the close ladder) is tested through the
TerminalManager in test_terminals.py, on both ways.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import DEFAULT_RUNC_ROOT
from agent.shell import ShellCommand
from agent.terminals.docker_exec import DockerExecProcess
from agent.terminals.process import TerminalProcess, start_process
from agent.terminals.pty import ExitStatus, PtyProcess, SpawnError
from tests.agent.conftest import BASE_IMAGE
from tests.agent.process_output import TIMEOUT_SECONDS, Output

# What a user could compare between two shells; nothing in it differs by chance (no pids,
# no TTY numbers).
PROBE = r"""
id; pwd; umask; ulimit -a
test -t 0 && echo stdin-is-a-tty
[ "$(ps -o sid= -p $$)" -eq $$ ] && echo leads-its-session
grep -E '^(Cap|NoNewPrivs|Seccomp)' /proc/self/status
cat /proc/self/cgroup /proc/self/attr/current 2>&1
env | grep -v -e '^SAM_TERMINAL_SESSION=' -e '^_=' -e '^SHLVL=' | sort
exit 7
"""
END_OF_ECHO = b"exit 7\r\n"


def docker(*args: str) -> str:
    run = subprocess.run(["docker", *args], capture_output=True, text=True, check=True)
    return run.stdout.strip()


@pytest.fixture(scope="module")
def workspace() -> Iterator[str]:
    """A container of the base image (run with --group-add) whose user `sam` has since
    joined two more groups."""
    if subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True).returncode:
        pytest.skip(f"{BASE_IMAGE} is not built (scripts/build-image builds it)")
    container = docker("run", "-d", "--network", "none", "-e", "FROM_IMAGE_RUN=1",
                       "--group-add", "audio", BASE_IMAGE,
                       "sleep", "infinity")  # fmt: skip
    docker("exec", "-u", "root", container, "usermod", "-aG", "users,staff", "sam")
    yield container
    subprocess.run(["docker", "rm", "-f", container], capture_output=True)


async def run(
    command: ShellCommand, mode: str, runc_root: Path = Path(DEFAULT_RUNC_ROOT)
) -> tuple[TerminalProcess, ExitStatus, bytes]:
    output = Output()
    process = await start_process(command, 91, 27, output, 64 * 1024, mode, runc_root)
    status = await asyncio.wait_for(process.wait(), TIMEOUT_SECONDS)
    process.close()
    return process, status, bytes(output.data)


def probe(container: str, user: str | None) -> ShellCommand:
    env = {"TERM": "xterm-256color", "FROM_EXEC": "1", "LANG": "C.UTF-8"}
    return ShellCommand(["sh", "-c", PROBE], env, cwd="/tmp", container=container, user=user)


@pytest.mark.parametrize("user", [None, "sam", "1000", "root", "sam:users", "1000:50", "4321"])
async def test_a_runtime_shell_is_the_shell_the_engine_gives(workspace: str, user: str) -> None:
    via_runtime, runtime_status, runtime_output = await run(probe(workspace, user), "runtime")
    via_engine, engine_status, engine_output = await run(probe(workspace, user), "engine")
    assert isinstance(via_runtime, PtyProcess) and isinstance(via_engine, DockerExecProcess)
    assert runtime_status == engine_status == ExitStatus(7, None)
    assert runtime_output.decode() == engine_output.decode()
    assert b"stdin-is-a-tty\r\nleads-its-session\r\n" in runtime_output
    assert b"FROM_EXEC=1" in runtime_output
    assert b"FROM_IMAGE_RUN=1" in runtime_output and b"Seccomp:\t2" in runtime_output


async def test_the_user_is_resolved_in_the_containers_own_files(workspace: str) -> None:
    _, status, output = await run(probe(workspace, "sam"), "runtime")
    assert status == ExitStatus(7, None)
    assert b"uid=1000(sam) gid=1000(sam) groups=1000(sam),29(audio),50(staff),100(users)" in output
    assert b"HOME=/home/sam\r\n" in output


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"user": "ghost"}, "no user 'ghost' in the container's /etc/passwd"),
        ({"user": "sam:ghosts"}, "no group 'ghosts' in the container's /etc/group"),
        ({"argv": ["no-such-program-sam"]}, '"no-such-program-sam": executable file not found'),
        ({"cwd": "/no/such/dir"}, "/no/such/dir"),
    ],
)
async def test_what_cannot_start_is_a_spawn_error_that_says_why(
    workspace: str, fields: dict, message: str
) -> None:
    command = ShellCommand(fields.pop("argv", ["bash"]), container=workspace, **fields)
    with pytest.raises(SpawnError) as raised:
        await start_process(command, 80, 24, Output(), 4096, "runtime")
    assert message in str(raised.value)
    assert "level=error" not in str(raised.value)  # runc's message, not its log line


async def test_a_stopped_container_is_a_spawn_error_both_ways() -> None:
    container = docker("create", BASE_IMAGE, "sleep", "infinity")
    try:
        for mode in ("runtime", "engine"):
            with pytest.raises(SpawnError, match="is not running"):
                await start_process(ShellCommand(["bash"], container=container), 80, 24,
                                    Output(), 4096, mode)  # fmt: skip
    finally:
        docker("rm", "-f", container)


async def test_without_runcs_state_auto_takes_the_engine(workspace: str, tmp_path: Path) -> None:
    # An agent that cannot reach runc's state of the container (not root, another runtime,
    # dockerd elsewhere) still gets a working shell; `runtime` alone says what is missing.
    for runc_root in (tmp_path, tmp_path / "missing"):
        process, status, output = await run(probe(workspace, "sam"), "auto", runc_root)
        assert isinstance(process, DockerExecProcess)
        assert status == ExitStatus(7, None) and b"uid=1000(sam)" in output
    with pytest.raises(SpawnError, match="runc does not know container"):
        await run(probe(workspace, "sam"), "runtime", tmp_path)
    with pytest.raises(SpawnError, match="set SAM_RUNC_ROOT"):
        await run(probe(workspace, "sam"), "runtime", tmp_path / "missing")


async def test_a_symlinked_passwd_is_left_to_the_engine(tmp_path: Path) -> None:
    # Followed from the agent, an absolute symlink in the container would read the host's.
    container = docker("run", "-d", "--network", "none", BASE_IMAGE, "sleep", "infinity")
    try:
        docker("exec", "-u", "root", container, "sh", "-c",
               "mv /etc/passwd /etc/passwd.real && ln -s /etc/passwd.real /etc/passwd")  # fmt: skip
        process, status, output = await run(probe(container, "sam"), "auto")
        assert isinstance(process, DockerExecProcess)
        assert status == ExitStatus(7, None) and b"uid=1000(sam)" in output
        with pytest.raises(SpawnError, match="cannot read the container's /etc/passwd"):
            await run(probe(container, "sam"), "runtime")
    finally:
        docker("rm", "-f", container)
