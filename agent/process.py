"""Run a tool the agent needs (git, the devcontainer CLI) to completion.

Without a shell, with a filtered environment (`child_env`), its output read in chunks into
bounded tails, and stopped on a ladder (SIGTERM, then SIGKILL, to its whole process group)
on timeout or cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from agent.shell import INHERITED_ENV_NAMES

OUTPUT_TAIL_BYTES = 16 * 1024
READ_CHUNK_BYTES = 64 * 1024
MAX_LINE_BYTES = 64 * 1024
STOP_GRACE_SECONDS = 5.0

LineHandler = Callable[[str], None]

# What the agent's child tools (git, the devcontainer CLI) see of its environment: enough
# to reach Docker, SSH agents and proxies. Never the rest: a devcontainer.json can read
# the CLI's environment through ${localEnv:NAME}.
CHILD_ENV_NAMES = (
    *INHERITED_ENV_NAMES,
    "SSH_AUTH_SOCK",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a tool the agent runs: CHILD_ENV_NAMES plus `overrides`."""
    inherited = {name: os.environ[name] for name in CHILD_ENV_NAMES if name in os.environ}
    return inherited | overrides


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str  # the last OUTPUT_TAIL_BYTES
    stderr: str  # the last OUTPUT_TAIL_BYTES
    timed_out: bool = False


class _Tail:
    """The last `limit` bytes of a stream, plus its complete lines for a line handler."""

    def __init__(self, limit: int, on_line: LineHandler | None) -> None:
        self.limit = limit
        self.data = bytearray()
        self.on_line = on_line
        self.partial = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        del self.data[: max(0, len(self.data) - self.limit)]
        if self.on_line is None:
            return
        self.partial += chunk
        *lines, rest = self.partial.split(b"\n")
        self.partial = bytearray(rest[-MAX_LINE_BYTES:])
        for line in lines:
            self.on_line(line[:MAX_LINE_BYTES].decode("utf-8", "replace"))

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


async def _pump(stream: asyncio.StreamReader, tail: _Tail) -> None:
    while chunk := await stream.read(READ_CHUNK_BYTES):
        tail.feed(chunk)


async def run_command(
    argv: Sequence[str],
    *,
    timeout_seconds: float,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    on_stderr_line: LineHandler | None = None,
) -> CommandResult:
    """Run `argv` (no shell) to completion, keeping bounded tails of its output.

    On timeout or cancellation the process group is stopped on a ladder; a timeout is
    reported in the result, a cancellation re-raised.
    """
    spawn = asyncio.ensure_future(
        asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,  # its own process group, so the ladder reaches children
        )
    )
    try:
        process = await asyncio.shield(spawn)
    except asyncio.CancelledError:
        # The process runs before its pipes are connected; cancelled in between, asyncio
        # would kill only the leader and wait for its children to close the pipes.
        with contextlib.suppress(OSError):  # OSError: it never started
            await _stop_group(await spawn)
        raise
    assert process.stdout is not None and process.stderr is not None
    out, err = _Tail(OUTPUT_TAIL_BYTES, None), _Tail(OUTPUT_TAIL_BYTES, on_stderr_line)
    readers = asyncio.gather(_pump(process.stdout, out), _pump(process.stderr, err))
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(readers), timeout_seconds)
        returncode = await process.wait()
    except TimeoutError:
        timed_out = True
        returncode = await _stop_group(process)
        readers.cancel()
    except asyncio.CancelledError:
        await _stop_group(process)
        readers.cancel()
        raise
    return CommandResult(returncode, out.text(), err.text(), timed_out)


async def _stop_group(process: asyncio.subprocess.Process) -> int:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            return await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            continue
    return await process.wait()


def stderr_tail(text: str, lines: int = 20) -> str:
    """The last few non-empty lines of a command's stderr, for a boot-log detail."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])
