"""A command in a container on a TTY of its own, attached through the Docker Engine's API.

The Docker backend's terminals. Running the `docker exec -it` CLI on one of our PTYs costs
two hops per keystroke (the CLI process, and a second TTY between it and us); instead the
agent creates the exec itself (POST /containers/{id}/exec, Tty: true) and starts it with
`Upgrade: tcp` (POST /exec/{id}/start): the connection to dockerd becomes a raw byte stream
to and from the TTY that dockerd holds for the process (agent/docker_api.py). Same
interface as PtyProcess; agent/terminals/process.py chooses between them.

Closing the stream does not end the process (moby#9098), so stopping is a ladder of its
own, SIGHUP -> SIGTERM -> SIGKILL, to the session the exec leads: by its host pid when the
agent may signal it, else by a `kill` run in the container as the shell's user. Either way
the process is recognised by its SAM_TERMINAL_SESSION tag, never by a bare pid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

from agent.docker_api import AttachStream, EngineAPI, EngineError
from agent.shell import SESSION_TAG_ENV, ShellCommand
from agent.terminals.pty import (
    MAX_PENDING_INPUT_BYTES,
    READ_BURST_BYTES,
    ExitStatus,
    InputOverflow,
    SpawnError,
    clamp_size,
    climb_stop_ladder,
    signal_session,
)

log = logging.getLogger(__name__)

EXIT_CODE_WAIT_SECONDS = 2.0  # after the stream ends, until the Engine reports the exit code
EXIT_CODE_POLL_SECONDS = 0.01
SIGNAL_OFFSET = 128  # the Engine reports "killed by signal N" as exit code 128 + N
# Signals the session the tag names, from inside the container (when the agent may not
# signal it from the host): its process group and its TTY's foreground group, as the PTY
# ladder does. Runs as the shell's user: even root in a container may not read the
# environment of another user's process.
STOP_SCRIPT = r"""
signal=$1 tag=$2
for dir in /proc/[0-9]*; do
  pid=${dir#/proc/}
  read -r stat 2>/dev/null < "$dir/stat" || continue
  set -- ${stat##*") "}
  [ "$4" = "$pid" ] || continue
  tr '\0' '\n' 2>/dev/null < "$dir/environ" | grep -qxF -e "$tag" || continue
  kill -s "$signal" -- "-$pid" 2>/dev/null
  [ "$6" -gt 0 ] 2>/dev/null && kill -s "$signal" -- "-$6" 2>/dev/null
done
exit 0
"""


class DockerExecProcess:
    """A command in a container on its own TTY; output goes to `on_output` as it arrives."""

    def __init__(
        self,
        api: EngineAPI,
        command: ShellCommand,
        exec_id: str,
        tag: str,
        stream: AttachStream,
        cols: int,
        rows: int,
    ) -> None:
        assert stream.transport is not None and command.container is not None
        self.cols, self.rows = cols, rows
        self._api = api
        self._container = command.container
        self._user = command.user or ""
        self._exec_id = exec_id
        self._tag = tag
        self._stream = stream
        self._transport = stream.transport
        self._applied: tuple[int, int] | None = None  # the size the Engine has set
        self._sizer: asyncio.Task[None] | None = None
        self._held = bytearray()  # input typed while a resize is on its way
        self._host_pid: int | None = None  # 0: not ours to signal from the host
        self._signalled = False
        self._status: ExitStatus | None = None
        self._exited = asyncio.Event()
        self._watcher = asyncio.create_task(self._watch())
        self.resize(cols, rows)

    @classmethod
    async def start(
        cls,
        command: ShellCommand,
        cols: int,
        rows: int,
        on_output: Callable[[bytes], None],
        read_burst_bytes: int = READ_BURST_BYTES,
    ) -> DockerExecProcess:
        """Create the exec and attach to it; raises SpawnError when the Engine refuses."""
        assert command.container is not None
        env = dict(command.env)
        if SESSION_TAG_ENV not in env:  # the stop ladder finds the process by its tag
            env[SESSION_TAG_ENV] = f"exec:{secrets.token_hex(8)}"
        tag = f"{SESSION_TAG_ENV}={env[SESSION_TAG_ENV]}"
        cols, rows = clamp_size(cols, rows)
        config = {
            "AttachStdin": True,
            "AttachStdout": True,
            "AttachStderr": True,
            "Tty": True,
            "ConsoleSize": [rows, cols],  # API 1.42+; older Engines get the resize below
            "Env": [f"{name}={value}" for name, value in env.items()],
            "Cmd": list(command.argv),
            "User": command.user or "",
            "WorkingDir": command.cwd or "",
        }
        stream = AttachStream(on_output, read_burst_bytes)
        try:
            api = await EngineAPI.connect(os.environ)
            created = await api.call("POST", f"/containers/{quote(command.container)}/exec", config)
            await api.hijack(f"/exec/{created['Id']}/start", {"Detach": False, "Tty": True}, stream)
        except EngineError as exc:
            where = f"container {command.container[:12]}"
            raise SpawnError(f"cannot start {command.argv[0]!r} in {where}: {exc}") from exc
        return cls(api, command, created["Id"], tag, stream, cols, rows)

    @property
    def status(self) -> ExitStatus | None:
        """The exit status once the process has ended, else None."""
        return self._status

    # -- output and input ---------------------------------------------------------------

    def pause_reading(self) -> None:
        """Stop reading output: the process blocks once the buffers on the way are full."""
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def write(self, data: bytes) -> None:
        """Queue input without blocking; raises InputOverflow when too much is pending."""
        if self._transport.is_closing():
            return
        pending = self._transport.get_write_buffer_size() + len(self._held)
        if pending + len(data) > MAX_PENDING_INPUT_BYTES:
            raise InputOverflow(pending)
        if self._sizer is not None:
            self._held += data  # after the resize, as on a PTY where it takes effect at once
        else:
            self._transport.write(data)

    # -- size ---------------------------------------------------------------------------

    def resize(self, cols: int, rows: int) -> tuple[int, int]:
        """Set the window size (clamped) through the Engine; input waits until it is set."""
        self.cols, self.rows = clamp_size(cols, rows)
        if self._sizer is None and (self.cols, self.rows) != self._applied:
            self._sizer = asyncio.create_task(self._apply_size())
        return self.cols, self.rows

    async def _apply_size(self) -> None:
        try:
            while (size := (self.cols, self.rows)) != self._applied:
                cols, rows = size
                path = f"/exec/{self._exec_id}/resize?h={rows}&w={cols}"
                try:
                    await self._api.call("POST", path)
                except EngineError as exc:  # the process has just ended, most likely
                    log.debug("terminal.resize_failed exec_id=%s error=%s", self._exec_id, exc)
                self._applied = size
        finally:
            self._sizer = None
            if self._held and not self._transport.is_closing():
                self._transport.write(bytes(self._held))
            self._held.clear()

    # -- exit ---------------------------------------------------------------------------

    async def _watch(self) -> None:
        """The stream ends when the process does; then the Engine has its exit code."""
        await self._stream.ended.wait()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + EXIT_CODE_WAIT_SECONDS
        info: dict[str, Any] = {}
        while loop.time() < deadline:
            try:
                info = await self._api.call("GET", f"/exec/{self._exec_id}/json")
            except EngineError:
                break
            if not info.get("Running"):
                break
            await asyncio.sleep(EXIT_CODE_POLL_SECONDS)
        code = None if info.get("Running") else info.get("ExitCode")
        self._status = _exit_status(code, self._signalled)
        self._exited.set()

    async def wait(self) -> ExitStatus:
        """Wait until the process has ended; its output has all been delivered by then."""
        await self._exited.wait()
        assert self._status is not None
        return self._status

    async def terminate(self) -> ExitStatus:
        """Stop the process: SIGHUP, then SIGTERM, then SIGKILL, waiting after each."""
        await climb_stop_ladder(self._signal, self._exited)
        if not self._exited.is_set():
            log.warning(
                "terminal.exec_not_stopped container=%s exec_id=%s tag=%s",
                self._container[:12],
                self._exec_id,
                self._tag,
            )
            self._transport.close()  # give up on it: the session ends all the same
        return await self.wait()

    async def _signal(self, signum: int) -> None:
        self._signalled = True
        if self._host_pid is None:
            self._host_pid = 0
            with contextlib.suppress(EngineError):
                info = await self._api.call("GET", f"/exec/{self._exec_id}/json")
                pid = info.get("Pid") or 0
                # The pid is the Engine's view; only our own /proc can tell it is this shell.
                if pid and _is_tagged_session_leader(pid, self._tag.encode()):
                    self._host_pid = pid
        if self._host_pid:
            if not _is_tagged_session_leader(self._host_pid, self._tag.encode()):
                return  # it has ended meanwhile (and the pid may be another's by now)
            if signal_session(self._host_pid, _foreground_group(self._host_pid), signum):
                return
        try:
            await signal_in_container(self._api, self._container, self._user, self._tag, signum)
        except EngineError as exc:
            log.warning("terminal.exec_signal_failed exec_id=%s error=%s", self._exec_id, exc)

    def close(self) -> None:
        """Release the connection (after wait/terminate)."""
        self._transport.close()
        if self._sizer is not None:
            self._sizer.cancel()
        if not self._watcher.done():
            self._watcher.cancel()


async def signal_in_container(
    api: EngineAPI, container: str, user: str, tag: str, signum: int
) -> None:
    """Send `signum` to the sessions in `container` whose leader has `tag` (NAME=value) in
    its environment, from a `kill` run there as `user` (see STOP_SCRIPT)."""
    name = signal.Signals(signum).name.removeprefix("SIG")
    config = {
        "User": user,
        "Cmd": ["sh", "-c", STOP_SCRIPT, "sam-stop", name, tag],
        "AttachStdout": False,
        "AttachStderr": False,
    }
    created = await api.call("POST", f"/containers/{quote(container)}/exec", config)
    await api.call("POST", f"/exec/{created['Id']}/start", {"Detach": True})


def _is_tagged_session_leader(pid: int | str, tag: bytes) -> bool:
    """Whether `pid` leads its session and has `tag` (NAME=value) in its environment;
    False when it is gone or not ours to read."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        if fields[3] != str(pid).encode():  # the session id: leaders only
            return False
        with open(f"/proc/{pid}/environ", "rb") as environ:
            return tag in environ.read().split(b"\0")
    except (OSError, IndexError):
        return False


def _foreground_group(pid: int) -> int | None:
    """The foreground process group of `pid`'s TTY (tpgid), from our /proc."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            foreground = int(stat.read().rsplit(b")", 1)[1].split()[5])
    except (OSError, IndexError, ValueError):
        return None
    return foreground if foreground > 0 else None


def _exit_status(code: int | None, signalled: bool) -> ExitStatus:
    """The Engine's exit code as an ExitStatus: 128 + N after our ladder's signal N."""
    if code is None:
        return ExitStatus(exit_code=None, signal=None)
    if signalled and code - SIGNAL_OFFSET in {int(s) for s in signal.Signals}:
        return ExitStatus(exit_code=None, signal=code - SIGNAL_OFFSET)
    return ExitStatus(exit_code=code, signal=None)
