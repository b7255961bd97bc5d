"""The node's heartbeat: every interval, POST /api/nodes/{node_id}/heartbeat with load.

The payload is {"cpu_percent", "memory": {"total", "used"}, "disk": {"total", "used"},
"active_workspaces", "agent_version", "workspaces"} (bytes; disk is the filesystem of the
state directory; `workspaces`: how recently each running workspace was used, from
agent/activity.py, for the control plane's idle sweep). A reply with a new callback token
is adopted by the ControlPlane client. A failed beat is logged and the loop goes on; the
next beat is one interval later.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psutil

from agent.control_plane import ControlPlane
from agent.errors import ControlPlaneError
from wire.version import VERSION

log = logging.getLogger("agent.heartbeat")

# psutil measures CPU between two calls; the first beat has no earlier call to measure from.
CPU_SAMPLE_SECONDS = 0.2

Sleep = Callable[[float], Awaitable[None]]


def _existing_ancestor(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def metrics(disk_path: Path, cpu_percent: float) -> dict[str, Any]:
    """The machine's memory and disk now, with the CPU load measured by the caller."""
    memory = psutil.virtual_memory()
    disk = psutil.disk_usage(str(_existing_ancestor(disk_path)))
    return {
        "cpu_percent": cpu_percent,
        # `total - available` is what applications cannot have; psutil's `used` leaves
        # out buffers/cache differently on each platform.
        "memory": {"total": memory.total, "used": memory.total - memory.available},
        "disk": {"total": disk.total, "used": disk.used},
    }


class Heartbeat:
    def __init__(
        self,
        control_plane: ControlPlane,
        active_workspaces: Callable[[], int],
        interval_seconds: float,
        disk_path: Path,
        sleep: Sleep = asyncio.sleep,
        activity: Callable[[], list[dict[str, Any]]] = list,
    ) -> None:
        self._control_plane = control_plane
        self._active_workspaces = active_workspaces
        self._interval_seconds = interval_seconds
        self._disk_path = disk_path
        self._sleep = sleep
        self._activity = activity
        self._task: asyncio.Task[None] | None = None
        self.beats = 0
        self.failures = 0
        self._cpu_started = False

    async def _cpu_percent(self) -> float:
        """CPU use since the previous beat; the first beat samples CPU_SAMPLE_SECONDS."""
        if not self._cpu_started:
            self._cpu_started = True
            return await asyncio.to_thread(psutil.cpu_percent, CPU_SAMPLE_SECONDS)
        return psutil.cpu_percent(interval=None)

    async def payload(self) -> dict[str, Any]:
        return {
            **metrics(self._disk_path, await self._cpu_percent()),
            "active_workspaces": self._active_workspaces(),
            "agent_version": VERSION,
            "workspaces": self._activity(),
        }

    async def beat(self) -> bool:
        """One heartbeat; False (logged) when it did not go through."""
        payload = await self.payload()
        try:
            await self._control_plane.heartbeat(payload)
        except ControlPlaneError as exc:
            self.failures += 1
            log.warning("heartbeat.failed failures=%d error=%s", self.failures, exc)
            return False
        self.beats += 1
        log.debug(
            "heartbeat.sent cpu_percent=%.1f active_workspaces=%d",
            payload["cpu_percent"],
            payload["active_workspaces"],
        )
        return True

    async def run(self) -> None:
        while True:
            try:
                await self.beat()
            except Exception:
                # The loop's own error boundary: a bug in one beat must not end them all.
                self.failures += 1
                log.exception("heartbeat.crashed failures=%d", self.failures)
            await self._sleep(self._interval_seconds)

    def start(self) -> None:
        assert self._task is None, "the heartbeat is already running"
        self._task = asyncio.get_running_loop().create_task(self.run(), name="heartbeat")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
