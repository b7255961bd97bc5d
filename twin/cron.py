"""Cron triggers for the local edge: the crons in wrangler.toml, on an injected clock.

Each trigger calls `scheduled(controller, env, ctx)` at the minute its expression names
(UTC, as Cloudflare evaluates them). `sam dev` also fires one on demand through
`/__scheduled?cron=...`, the hook `wrangler dev --test-scheduled` offers.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from croniter import croniter

from twin.clock import Clock

log = logging.getLogger("sam.local.cron")


@dataclass
class ScheduledController:
    """The `controller` a scheduled handler receives."""

    cron: str
    scheduledTime: float  # milliseconds since the epoch, as in JS
    type: str = "scheduled"

    def noRetry(self) -> None:
        """Cloudflare does not retry cron events by default; nothing to switch off."""


Fire = Callable[[ScheduledController], Awaitable[None]]


def validate(expression: str) -> None:
    if not croniter.is_valid(expression):
        raise ValueError(f"{expression!r} is not a valid cron expression")


class CronScheduler:
    def __init__(self, crons: tuple[str, ...], fire: Fire, clock: Clock) -> None:
        for expression in crons:
            validate(expression)
        self._crons = crons
        self._fire = fire
        self._clock = clock
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        now = self._clock.now()  # read here: a task's first step may run after time moved on
        self._tasks = [
            asyncio.create_task(self._run(expression, now)) for expression in self._crons
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []

    async def _run(self, expression: str, since: float) -> None:
        schedule = croniter(expression, datetime.fromtimestamp(since, UTC))
        while True:
            due = schedule.get_next(float)
            await self._clock.sleep_until(due)
            try:
                await self._fire(ScheduledController(expression, due * 1000))
            except Exception:
                log.exception("cron.failed cron=%s", expression)
