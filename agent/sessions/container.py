"""Processes inside a workspace's container, through the `docker exec` CLI.

The adapter of an agent session runs as `docker exec -i` with its stdio piped to the agent
(ACP over stdin/stdout, stderr kept as a bounded tail). Values for the process's
environment are handed to the CLI in *its* environment and named with `-e NAME`, so they
never appear in a command line (`ps`). Ending the CLI does not end the process in the
container, so signals go to it from inside: every process of a session carries
SESSION_TAG_ENV=<id> in its environment, and `signal_tagged` signals them all.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from agent.process import child_env
from agent.shell import ShellCommand

SESSION_TAG_ENV = "SAM_AGENT_SESSION"
DOCKER = "docker"
RUN_TIMEOUT_SECONDS = 30.0
COMMAND_TERM = "xterm-256color"  # the agent's commands run on a terminal, as a user's shell
# Signals every process whose environment holds the tag (NAME=value): the adapter and
# everything it started. Runs as the session's user, who may read those environments.
SIGNAL_SCRIPT = r"""
signal=$1 tag=$2
for dir in /proc/[0-9]*; do
  tr '\0' '\n' 2>/dev/null < "$dir/environ" | grep -qxF -e "$tag" || continue
  kill -s "$signal" "${dir#/proc/}" 2>/dev/null
done
exit 0
"""


@dataclass(frozen=True)
class ContainerUser:
    """Where and as whom a session's processes run."""

    container: str
    user: str
    folder: str
    env: Mapping[str, str]  # the workspace's remoteEnv


def exec_argv(
    target: ContainerUser, argv: Sequence[str], env_names: Sequence[str], interactive: bool
) -> list[str]:
    command = [DOCKER, "exec"]
    if interactive:
        command.append("-i")
    command += ["-u", target.user, "-w", target.folder]
    for name in env_names:
        command += ["-e", name]
    return [*command, target.container, *argv]


class Launcher(Protocol):
    """How a session starts and signals its processes: ContainerLauncher in a workspace;
    the tests' fault-injection runs hand in one that starts a stand-in agent."""

    async def start(
        self, argv: Sequence[str], env: Mapping[str, str], limit: int
    ) -> asyncio.subprocess.Process: ...

    async def run(
        self, argv: Sequence[str], stdin: bytes | None = None
    ) -> tuple[int, bytes, bytes]: ...

    async def signal_tagged(self, tag: str, signum: signal.Signals) -> None: ...

    def command(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None
    ) -> ShellCommand: ...


@dataclass(frozen=True)
class ContainerLauncher:
    target: ContainerUser

    async def start(
        self, argv: Sequence[str], env: Mapping[str, str], limit: int
    ) -> asyncio.subprocess.Process:
        """`argv` in the container with stdin, stdout and stderr piped; `env` on top of
        the workspace's remoteEnv."""
        values = {**self.target.env, **env}
        return await asyncio.create_subprocess_exec(
            *exec_argv(self.target, argv, list(values), interactive=True),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(**values),
            limit=limit,
        )

    async def run(
        self, argv: Sequence[str], stdin: bytes | None = None
    ) -> tuple[int, bytes, bytes]:
        """Run `argv` in the container to its end: (exit code, stdout, stderr)."""
        process = await asyncio.create_subprocess_exec(
            *exec_argv(self.target, argv, [], interactive=stdin is not None),
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=child_env(),
        )
        return await communicate(process, stdin)

    async def signal_tagged(self, tag: str, signum: signal.Signals) -> None:
        name = signum.name.removeprefix("SIG")
        await self.run(["sh", "-c", SIGNAL_SCRIPT, "sam-signal", name, tag])

    def command(self, argv: Sequence[str], env: Mapping[str, str], cwd: str | None) -> ShellCommand:
        """`argv` on a terminal in the container, as the session's user, in `cwd` (default:
        the workspace folder), with the workspace's remoteEnv and `env` on top."""
        return ShellCommand(
            list(argv),
            {**self.target.env, "TERM": COMMAND_TERM, **env},
            cwd=cwd or self.target.folder,
            container=self.target.container,
            user=self.target.user,
        )


async def communicate(
    process: asyncio.subprocess.Process, stdin: bytes | None
) -> tuple[int, bytes, bytes]:
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(stdin), RUN_TIMEOUT_SECONDS)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return process.returncode, stdout, stderr
