"""What a terminal session runs on: a PTY on this machine, or a TTY in a container.

`start_process` is the one place that chooses. A ShellCommand that names a container is
created and attached through the Docker Engine's API (agent/docker_exec.py); any other
runs on a PTY of the agent (agent/pty.py). Both are a TerminalProcess, so a Session never
asks which it has.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from agent.docker_exec import DockerExecProcess
from agent.pty import ExitStatus, PtyProcess
from agent.shell import ShellCommand


class TerminalProcess(Protocol):
    cols: int
    rows: int

    def write(self, data: bytes) -> None: ...
    def resize(self, cols: int, rows: int) -> tuple[int, int]: ...
    def pause_reading(self) -> None: ...
    def resume_reading(self) -> None: ...
    async def wait(self) -> ExitStatus: ...
    async def terminate(self) -> ExitStatus: ...
    def close(self) -> None: ...


async def start_process(
    command: ShellCommand,
    cols: int,
    rows: int,
    on_output: Callable[[bytes], None],
    read_burst_bytes: int,
) -> TerminalProcess:
    """Start `command` on a terminal of `cols` x `rows`; raises SpawnError."""
    if command.container is not None:
        return await DockerExecProcess.start(command, cols, rows, on_output, read_burst_bytes)
    return PtyProcess(command, cols, rows, on_output, read_burst_bytes)
