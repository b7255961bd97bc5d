"""Durable Object alarms: persisted, fired on an injected clock, retried like Cloudflare.

An object's alarm lives in its own storage (the truth). The scheduler keeps an index,
`<directory>/alarms.sqlite`, of every object that may have one, so a restarted process
finds pending alarms without opening every object's file. The index may hold more than
the truth (it is written before the alarm), never less; each timer re-reads the object's
storage before firing.

The alarm is cleared before `alarm(alarmInfo)` runs, so an alarm set by the handler
stands. When the handler raises, the alarm is retried with exponential backoff.
"""

import asyncio
import logging
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from twin.clock import Clock
from twin.private_files import connect_private
from twin.storage import DurableObjectStorage

log = logging.getLogger("sam.local.alarms")

ALARM_RETRY_BASE_SECONDS = 2.0
ALARM_MAX_RETRIES = 6


@dataclass(frozen=True)
class AlarmInfo:
    """The `alarmInfo` argument of `alarm()`."""

    retryCount: int
    isRetry: bool


class AlarmTarget(Protocol):
    """What the scheduler needs of a namespace (a `DurableObjectNamespace`)."""

    class_name: str

    async def fire_alarm(self, object_id: str) -> int | None:
        """Deliver the object's alarm if due; return when it is next due (ms) or None."""
        ...


def retry_delay_seconds(retries: int) -> float:
    """The wait before retry number `retries + 1`: 2 s, 4 s, 8 s ..."""
    return ALARM_RETRY_BASE_SECONDS * 2**retries


async def deliver(
    storage: DurableObjectStorage, clock: Clock, handler: Callable[[AlarmInfo], Awaitable[Any]]
) -> int | None:
    """Run the object's alarm if it is due; return when it is next due (ms) or None."""
    at_ms, retries = storage.alarm_state()
    if at_ms is None or at_ms > clock.now() * 1000:
        return at_ms
    storage.store_alarm(None, retries=0)
    try:
        await handler(AlarmInfo(retryCount=retries, isRetry=retries > 0))
    except asyncio.CancelledError:
        # Shutting down mid-handler: keep the alarm so it fires again (at least once).
        if storage.alarm_state()[0] is None:
            storage.store_alarm(at_ms, retries)
        raise
    except Exception:  # the object's own code failed: Cloudflare logs it and retries
        if storage.alarm_state()[0] is not None:
            log.exception("alarm.failed path=%s (a new alarm was set; not retried)", storage.path)
        elif retries < ALARM_MAX_RETRIES:
            log.exception("alarm.failed path=%s retry=%d", storage.path, retries + 1)
            retry_ms = int((clock.now() + retry_delay_seconds(retries)) * 1000)
            storage.store_alarm(retry_ms, retries + 1)
        else:
            log.exception("alarm.abandoned path=%s after %d retries", storage.path, retries)
    return storage.alarm_state()[0]


class AlarmScheduler:
    """One timer per object with a pending alarm, for every namespace registered."""

    def __init__(self, directory: Path, clock: Clock) -> None:
        self.clock = clock
        self._index_path = directory / "alarms.sqlite"
        self._index: sqlite3.Connection | None = None
        self._targets: dict[str, AlarmTarget] = {}
        self._due: dict[tuple[str, str], float] = {}  # (class, id) -> seconds since the epoch
        self._timers: dict[tuple[str, str], asyncio.Task[None]] = {}
        self._sleeping: set[asyncio.Task[None]] = set()  # timers not yet firing
        self._running = False

    def register(self, target: AlarmTarget) -> None:
        self._targets[target.class_name] = target
        for key in [k for k in self._due if k[0] == target.class_name]:
            self._arm(key)

    def start(self) -> None:
        """Arm every alarm in the index (call from the running event loop)."""
        self._running = True
        for class_name, object_id, at_ms in self._db.execute("SELECT * FROM pending"):
            self._due[(class_name, object_id)] = at_ms / 1000
        for key in list(self._due):
            self._arm(key)

    async def stop(self) -> None:
        self._running = False
        timers = list(self._timers.values())
        for timer in timers:
            timer.cancel()
        await asyncio.gather(*timers, return_exceptions=True)
        if self._index is not None:
            self._index.close()
            self._index = None

    def schedule(self, class_name: str, object_id: str, at_ms: int | None) -> None:
        """Record that the object's alarm is now `at_ms` (None: no alarm)."""
        key = (class_name, object_id)
        if at_ms is None:
            self._db.execute("DELETE FROM pending WHERE class = ? AND id = ?", key)
            self._due.pop(key, None)
        else:
            self._db.execute("INSERT OR REPLACE INTO pending VALUES (?, ?, ?)", (*key, at_ms))
            self._due[key] = at_ms / 1000
        timer = self._timers.get(key)
        if timer in self._sleeping:
            timer.cancel()  # a firing timer reads the new time itself when it finishes
            del self._timers[key]
        self._arm(key)

    async def settle(self) -> None:
        """Wait until no alarm is due at the clock's current time (for tests)."""
        while True:
            await asyncio.sleep(0)
            now = self.clock.now()
            firing = [t for t in self._timers.values() if t not in self._sleeping]
            due = [k for k, t in self._timers.items() if self._due.get(k, now + 1) <= now]
            if not firing and not due:
                return
            if firing:
                await asyncio.wait(firing)

    def _arm(self, key: tuple[str, str]) -> None:
        if self._running and key in self._due and key not in self._timers:
            timer = asyncio.get_running_loop().create_task(self._timer(key))
            self._timers[key] = timer
            self._sleeping.add(timer)

    async def _timer(self, key: tuple[str, str]) -> None:
        try:
            at = self._due.get(key)
            target = self._targets.get(key[0])
            if at is None or target is None:  # cancelled, or its class is not bound here
                return
            await self.clock.sleep_until(at)
            self._sleeping.discard(asyncio.current_task())  # type: ignore[arg-type]
            next_ms = await target.fire_alarm(key[1])
        finally:
            self._sleeping.discard(asyncio.current_task())  # type: ignore[arg-type]
            if self._timers.get(key) is asyncio.current_task():
                del self._timers[key]
        self.schedule(*key, next_ms)

    @property
    def _db(self) -> sqlite3.Connection:
        if self._index is None:
            self._index = connect_private(self._index_path, isolation_level=None)
            self._index.execute(
                "CREATE TABLE IF NOT EXISTS pending"
                " (class TEXT, id TEXT, at_ms INTEGER NOT NULL, PRIMARY KEY (class, id))"
            )
        return self._index
