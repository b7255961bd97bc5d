"""A process on a pseudo-terminal, driven by the asyncio loop.

Reads are non-blocking (`loop.add_reader`) in large chunks; writes never block
the loop (a bounded pending buffer drained by `loop.add_writer`); the child's
exit is watched through a pidfd; stopping escalates SIGHUP -> SIGTERM -> SIGKILL.

The child is started with `os.posix_spawn` rather than `fork`: it is safe in a
process that runs threads (the Docker SDK does), and opening the slave after
`setsid` makes it the child's controlling terminal, so job control and Ctrl-C
work as in any terminal.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import shutil
import signal
import struct
import termios
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from agent.shell import ShellCommand

MIN_COLS = 1
MAX_COLS = 500
MIN_ROWS = 1
MAX_ROWS = 200
READ_CHUNK_BYTES = 64 * 1024  # one os.read; a PTY hands out at most a few KiB per read
READ_BURST_BYTES = 256 * 1024  # default cap on bytes gathered per readable event
MAX_PENDING_INPUT_BYTES = 1024 * 1024  # input queued while the child is not reading
DRAIN_AFTER_EXIT_SECONDS = 1.0  # output still in flight when the child has exited
HUP_WAIT_SECONDS = 1.0
TERM_WAIT_SECONDS = 2.0
KILL_WAIT_SECONDS = 5.0
# How a terminal's process is stopped, here and in agent/terminals/docker_exec.py: each signal in
# turn, then up to that many seconds for it to exit, until one does.
STOP_LADDER: tuple[tuple[signal.Signals, float], ...] = (
    (signal.SIGHUP, HUP_WAIT_SECONDS),
    (signal.SIGTERM, TERM_WAIT_SECONDS),
    (signal.SIGKILL, KILL_WAIT_SECONDS),
)


async def climb_stop_ladder(
    send: Callable[[signal.Signals], Awaitable[None]], exited: asyncio.Event
) -> None:
    """Send each STOP_LADDER signal in turn until `exited` is set, waiting after each."""
    for signum, wait_seconds in STOP_LADDER:
        if exited.is_set():
            return
        await send(signum)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(exited.wait()), wait_seconds)


def signal_session(leader: int, foreground: int | None, signum: int) -> bool:
    """Signal the process group of the session `leader` leads and its TTY's foreground
    group (a job of the shell's, in a group of its own); False when we may not."""
    for group in {leader, foreground or leader}:
        try:
            os.killpg(group, signum)
        except ProcessLookupError:
            continue
        except PermissionError:
            return False
    return True


class SpawnError(Exception):
    """The program could not be started (not found, not executable)."""


class InputOverflow(Exception):
    """The child has not read its input and the pending buffer is full."""


@dataclass(frozen=True)
class ExitStatus:
    """How the child ended: an exit code, or the signal that killed it."""

    exit_code: int | None
    signal: int | None


def clamp_size(cols: int, rows: int) -> tuple[int, int]:
    """The terminal size actually applied for a requested one."""
    return min(max(cols, MIN_COLS), MAX_COLS), min(max(rows, MIN_ROWS), MAX_ROWS)


class PtyProcess:
    """A child process on a PTY whose master the agent holds; output goes to `on_output`
    as it arrives.

    `spawn` starts one on a PTY of this machine; agent/terminals/runtime_exec.py hands over one that
    the container runtime started on a PTY in a container (the process must be our child
    either way: its exit status is collected here).
    """

    def __init__(
        self,
        pid: int,
        master_fd: int,
        cols: int,
        rows: int,
        on_output: Callable[[bytes], None],
        read_burst_bytes: int = READ_BURST_BYTES,
    ) -> None:
        self._loop = asyncio.get_running_loop()
        self._on_output = on_output
        self._burst = read_burst_bytes
        self._pending = bytearray()
        self._writing = False
        self._reading = False
        self._eof = asyncio.Event()
        self._exited = asyncio.Event()
        self._status: ExitStatus | None = None
        self.cols, self.rows = clamp_size(cols, rows)
        self.pid, self._fd = pid, master_fd
        os.set_blocking(self._fd, False)
        _set_size(self._fd, self.cols, self.rows)  # a no-op (no SIGWINCH) when already so
        self._pidfd = os.pidfd_open(self.pid)
        self._loop.add_reader(self._pidfd, self._on_pidfd)
        self.resume_reading()

    @classmethod
    def spawn(
        cls,
        command: ShellCommand,
        cols: int,
        rows: int,
        on_output: Callable[[bytes], None],
        read_burst_bytes: int = READ_BURST_BYTES,
    ) -> PtyProcess:
        """Start `command` on a new PTY of this machine; raises SpawnError."""
        cols, rows = clamp_size(cols, rows)
        pid, master_fd = _spawn(command, cols, rows)
        return cls(pid, master_fd, cols, rows, on_output, read_burst_bytes)

    @property
    def status(self) -> ExitStatus | None:
        """The exit status once the child has been reaped, else None."""
        return self._status

    # -- output ---------------------------------------------------------------

    def pause_reading(self) -> None:
        """Stop reading output: the child blocks once the PTY buffer is full."""
        if self._reading:
            self._loop.remove_reader(self._fd)
            self._reading = False

    def resume_reading(self) -> None:
        if not self._reading and not self._eof.is_set():
            self._loop.add_reader(self._fd, self._on_readable)
            self._reading = True

    def _on_readable(self) -> None:
        chunks: list[bytes] = []
        total = 0
        while total < self._burst:
            try:
                data = os.read(self._fd, min(READ_CHUNK_BYTES, self._burst - total))
            except BlockingIOError:
                break
            except OSError as exc:  # EIO: every slave fd is closed, the child is gone
                assert exc.errno in (errno.EIO, errno.EBADF), exc
                data = b""
            if not data:
                self._on_eof()
                break
            chunks.append(data)
            total += len(data)
        if chunks:
            self._on_output(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def _on_eof(self) -> None:
        self.pause_reading()
        self._eof.set()

    # -- input ----------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Queue input for the child without blocking; raises InputOverflow when full."""
        if self._fd < 0 or self._eof.is_set():
            return
        if len(self._pending) + len(data) > MAX_PENDING_INPUT_BYTES:
            raise InputOverflow(len(self._pending))
        if not self._pending:
            try:
                written = os.write(self._fd, data)
            except BlockingIOError:
                written = 0
            except OSError:
                return  # the child is gone; its exit is reported separately
            data = data[written:]
        if data:
            self._pending += data
            if not self._writing:
                self._loop.add_writer(self._fd, self._on_writable)
                self._writing = True

    def _on_writable(self) -> None:
        try:
            written = os.write(self._fd, self._pending)
        except BlockingIOError:
            return
        except OSError:
            written = len(self._pending)
        del self._pending[:written]
        if not self._pending:
            self._loop.remove_writer(self._fd)
            self._writing = False

    # -- size -----------------------------------------------------------------

    def resize(self, cols: int, rows: int) -> tuple[int, int]:
        """Set the window size (clamped); the child gets SIGWINCH. Returns the size set."""
        self.cols, self.rows = clamp_size(cols, rows)
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                _set_size(self._fd, self.cols, self.rows)
        return self.cols, self.rows

    # -- exit -----------------------------------------------------------------

    def _on_pidfd(self) -> None:
        self._loop.remove_reader(self._pidfd)
        try:
            _, raw = os.waitpid(self.pid, 0)
        except ChildProcessError:  # reaped by someone else: the status is lost
            self._status = ExitStatus(exit_code=None, signal=None)
            self._exited.set()
            return
        if os.WIFSIGNALED(raw):
            self._status = ExitStatus(exit_code=None, signal=os.WTERMSIG(raw))
        else:
            self._status = ExitStatus(exit_code=os.waitstatus_to_exitcode(raw), signal=None)
        self._exited.set()

    async def wait(self) -> ExitStatus:
        """Wait until the child has exited and its output has been read to the end."""
        await self._exited.wait()
        # The last bytes written before exit may still be in the kernel's buffer:
        # read until EOF, but not forever (a background job may hold the PTY open).
        if not self._eof.is_set():
            self.resume_reading()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._eof.wait(), DRAIN_AFTER_EXIT_SECONDS)
        assert self._status is not None
        return self._status

    async def terminate(self) -> ExitStatus:
        """Stop the child: hang up (SIGHUP), then SIGTERM, then SIGKILL, waiting after each."""
        await climb_stop_ladder(self._signal, self._exited)
        return await self.wait()

    async def _signal(self, signum: int) -> None:
        foreground = None
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                foreground = os.tcgetpgrp(self._fd)
        signal_session(self.pid, foreground, signum)
        if signum == signal.SIGHUP:
            # A real hang-up, as when a terminal window closes: a shell can miss a bare
            # SIGHUP (bash does, at the moment it enters readline) but not EIO on read.
            self._hang_up()

    def _hang_up(self) -> None:
        """Close the master: the kernel hangs up the terminal (SIGHUP, then EIO on reads)."""
        if self._fd < 0:
            return
        self.pause_reading()
        if self._writing:
            self._loop.remove_writer(self._fd)
            self._writing = False
        self._pending.clear()
        os.close(self._fd)
        self._fd = -1  # never touch the number again: the kernel reuses it
        self._eof.set()

    def close(self) -> None:
        """Release the file descriptors (after wait/terminate)."""
        self._hang_up()
        if self._pidfd >= 0:
            if not self._exited.is_set():
                self._loop.remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = -1


_RESETTABLE_SIGNALS = frozenset(signal.valid_signals()) - {signal.SIGKILL, signal.SIGSTOP}


def _set_size(fd: int, cols: int, rows: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _spawn(command: ShellCommand, cols: int, rows: int) -> tuple[int, int]:
    env = command.child_env(os.environ)
    program = shutil.which(command.argv[0], path=env.get("PATH", os.defpath))
    if program is None:
        raise SpawnError(f"{command.argv[0]!r} not found on PATH {env.get('PATH', '')!r}")
    argv = list(command.argv)
    if command.cwd is not None:
        # posix_spawn cannot chdir: a tiny sh does it, then replaces itself.
        argv = ["/bin/sh", "-c", 'cd -- "$0" && exec "$@"', command.cwd, program, *argv[1:]]
        program = "/bin/sh"
    master, slave = os.openpty()
    try:
        _set_size(master, cols, rows)
        slave_path = os.ttyname(slave)
        pid = os.posix_spawn(
            program,
            argv,
            env,
            setsid=True,
            # Nothing the agent ignores or blocks (SIGPIPE, ...) leaks into the shell.
            setsigdef=_RESETTABLE_SIGNALS,
            setsigmask=(),
            file_actions=[
                # Opened after setsid, the slave becomes the controlling terminal.
                (os.POSIX_SPAWN_OPEN, 0, slave_path, os.O_RDWR, 0),
                (os.POSIX_SPAWN_DUP2, 0, 1),
                (os.POSIX_SPAWN_DUP2, 0, 2),
            ],
        )
    except OSError as exc:
        os.close(master)
        raise SpawnError(f"cannot start {argv[0]!r}: {exc.strerror}") from exc
    finally:
        os.close(slave)
    return pid, master
