"""A workspace's boot log: ordered entries, live subscribers, each entry reported upstream.

Entry: {"step", "status": started|succeeded|failed, "message", "detail", "timestamp"}
(wire/agent_api.py BootLogEntry).
A subscriber gets every entry so far, then live ones, and ends when the provisioning run
ends (`finish()`); a rebuild or restart opens a new run on the same log.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

from agent.persistence import utc_now
from wire.agent_api import StepStatus

log = logging.getLogger("agent.workspaces.boot_log")

MAX_ENTRIES = 500
MAX_DETAIL_CHARS = 8 * 1024
MAX_MESSAGE_CHARS = 1024


class BootLogReporter(Protocol):
    async def boot_log(self, workspace_id: str, entry: dict[str, Any]) -> None: ...


_END = None  # queued to a subscriber when the run ends


class BootLog:
    """Entries of one workspace, kept in order (the oldest dropped past MAX_ENTRIES)."""

    def __init__(
        self,
        workspace_id: str,
        reporter: BootLogReporter | None = None,
        clock: Callable[[], str] = utc_now,
    ) -> None:
        self.workspace_id = workspace_id
        self._reporter = reporter
        self._clock = clock
        self._entries: deque[dict[str, Any]] = deque(maxlen=MAX_ENTRIES)
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._finished = False

    @property
    def finished(self) -> bool:
        return self._finished

    def entries(self) -> list[dict[str, Any]]:
        return list(self._entries)

    def open(self) -> None:
        """Start a new provisioning run: subscribers from now on see live entries again."""
        self._finished = False

    async def add(
        self, step: str, status: StepStatus, message: str, detail: str | None = None
    ) -> dict[str, Any]:
        entry = {
            "step": step,
            "status": str(status),
            "message": message[:MAX_MESSAGE_CHARS],
            "detail": detail[-MAX_DETAIL_CHARS:] if detail else None,
            "timestamp": self._clock(),
        }
        self._entries.append(entry)
        log.info(
            "workspace.boot_log workspace_id=%s step=%s status=%s message=%s",
            self.workspace_id,
            step,
            status,
            entry["message"],
        )
        for queue in self._subscribers:
            # Bounded without a maxsize: a subscriber is dropped at the end of the run, and a
            # run adds a few dozen entries at most.
            queue.put_nowait(entry)
        if self._reporter is not None:
            await self._reporter.boot_log(self.workspace_id, entry)
        return entry

    def finish(self) -> None:
        """The provisioning run ended: every subscriber's iterator ends after its backlog."""
        self._finished = True
        for queue in self._subscribers:
            queue.put_nowait(_END)
        self._subscribers.clear()

    async def subscribe(self) -> AsyncIterator[dict[str, Any]]:
        """Every entry so far, then live entries until the run ends."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        for entry in self._entries:
            queue.put_nowait(entry)
        if self._finished:
            queue.put_nowait(_END)
        else:
            self._subscribers.add(queue)
        try:
            while (entry := await queue.get()) is not _END:
                assert entry is not None
                yield entry
        finally:
            self._subscribers.discard(queue)
