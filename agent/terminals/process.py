"""What a terminal session runs on: a PTY on this machine, or a TTY in a container.

`start_process` is the one place that chooses. A ShellCommand without a container runs on
a PTY of the agent (agent/terminals/pty.py). One that names a container runs on a TTY there, reached
one of two ways (`mode`, the agent's SAM_CONTAINER_EXEC):

- `runtime`: runc execs it and hands the agent the TTY's master (agent/terminals/runtime_exec.py);
  the bytes go straight between the TTY and the agent, as on the host. Root only.
- `engine`: the Docker Engine's API creates the exec and attaches to it
  (agent/terminals/docker_exec.py); every byte passes through containerd's shim and dockerd.
- `auto` (the default): `runtime` where the agent may use it, else `engine`.

Each is a TerminalProcess, so a Session never asks which it has.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from agent.config import DEFAULT_RUNC_ROOT
from agent.shell import ShellCommand
from agent.terminals import runtime_exec
from agent.terminals.docker_exec import DockerExecProcess
from agent.terminals.pty import ExitStatus, PtyProcess, SpawnError

log = logging.getLogger(__name__)


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
    mode: str = "auto",
    runc_root: Path = Path(DEFAULT_RUNC_ROOT),
) -> TerminalProcess:
    """Start `command` on a terminal of `cols` x `rows`; raises SpawnError."""
    if command.container is None:
        return PtyProcess.spawn(command, cols, rows, on_output, read_burst_bytes)
    if mode != "engine":
        try:
            return await runtime_exec.start(
                command, cols, rows, on_output, runc_root, read_burst_bytes
            )
        except runtime_exec.RuntimeUnavailable as exc:
            if mode == "runtime":
                raise SpawnError(f"{exc} (SAM_CONTAINER_EXEC=runtime)") from exc
            log.debug("terminal.engine_exec container=%s reason=%s", command.container[:12], exc)
    return await DockerExecProcess.start(command, cols, rows, on_output, read_burst_bytes)
