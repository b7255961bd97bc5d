"""The agent as the reaper of its descendants' orphans.

Terminals in containers are started by runc, which exits as soon as the shell runs
(agent/terminals/runtime_exec.py). A child subreaper (prctl PR_SET_CHILD_SUBREAPER) inherits the
orphans below it, so the shell becomes the agent's child and its exit status the agent's
to collect. The cost: every other orphan below the agent comes to it too (the docker CLI
children of a `devcontainer up` killed on timeout, say) and stays a zombie unless reaped.

Written here because no library does it for asyncio, whose child watchers wait only for the
pids they started. The rule that keeps it from stealing anybody's exit status: whoever
starts a child waits for it (asyncio, PtyProcess), so its zombie is gone within
milliseconds; a zombie child that is still there ORPHAN_AGE_SECONDS after it was first seen
is one nobody waits for.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
ORPHAN_AGE_SECONDS = 1.0
SWEEP_SECONDS = 10.0


def become_subreaper() -> None:
    """Make this process the reaper of its descendants' orphans (idempotent); raises
    OSError where the kernel refuses."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(errno)}")


class Reaper:
    """Reaps the zombie children nobody waits for, every SWEEP_SECONDS while started."""

    def __init__(self, proc: Path = Path("/proc")) -> None:
        self._proc = proc
        self._first_seen: dict[int, float] = {}  # zombie child pid -> when first seen
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(SWEEP_SECONDS)
            self.sweep()

    def sweep(self, now: float | None = None) -> list[int]:
        """Reap the zombie children first seen at least ORPHAN_AGE_SECONDS ago; returns
        their pids."""
        now = time.monotonic() if now is None else now
        zombies = set(self._zombie_children())
        self._first_seen = {pid: self._first_seen.get(pid, now) for pid in zombies}
        reaped = []
        for pid, seen in list(self._first_seen.items()):
            if now - seen < ORPHAN_AGE_SECONDS:
                continue
            with contextlib.suppress(ChildProcessError):
                if os.waitpid(pid, os.WNOHANG)[0] == pid:
                    reaped.append(pid)
            del self._first_seen[pid]
        if reaped:
            log.info("reaper.reaped count=%d pids=%s", len(reaped), reaped)
        return reaped

    def _zombie_children(self) -> list[int]:
        me = os.getpid()
        found = []
        for entry in self._proc.iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_bytes()
            except OSError:  # it has just been reaped
                continue
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            state, ppid = stat.rsplit(b")", 1)[1].split()[:2]
            if state == b"Z" and int(ppid) == me:
                found.append(int(entry.name))
        return found
