"""Cron triggers fire at the minutes their expressions name, on an injected clock."""

import asyncio
from datetime import UTC, datetime

import pytest

from twin.clock import ManualClock
from twin.cron import CronScheduler, ScheduledController, validate
from twin.env import Env, raw_bindings


async def settle() -> None:
    """Let woken tasks run to their next wait (the clock never moves by itself)."""
    for _ in range(20):
        await asyncio.sleep(0)


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


async def test_fires_every_five_minutes_in_utc() -> None:
    clock = ManualClock(at("2026-01-01T10:02:30"))
    fired: list[ScheduledController] = []

    async def fire(controller: ScheduledController) -> None:
        fired.append(controller)

    scheduler = CronScheduler(("*/5 * * * *",), fire, clock)
    scheduler.start()
    try:
        for _ in range(12):  # 12 minutes, a minute at a time
            clock.advance(60)
            await settle()
    finally:
        await scheduler.stop()
    assert [c.scheduledTime for c in fired] == [
        at("2026-01-01T10:05:00") * 1000,
        at("2026-01-01T10:10:00") * 1000,
    ]
    assert {c.cron for c in fired} == {"*/5 * * * *"}


async def test_a_failing_handler_does_not_stop_the_schedule() -> None:
    clock = ManualClock(at("2026-01-01T00:00:30"))
    calls = 0

    async def fire(controller: ScheduledController) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("handler bug")

    scheduler = CronScheduler(("* * * * *",), fire, clock)
    scheduler.start()
    try:
        for _ in range(3):
            clock.advance(60)
            await settle()
    finally:
        await scheduler.stop()
    assert calls == 3


@pytest.mark.parametrize("expression", ["every tuesday", "61 * * * *", "* * *", ""])
def test_invalid_expressions_are_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="not a valid cron expression"):
        validate(expression)


def test_scheduled_gets_raw_bindings_and_plain_vars() -> None:
    # workerd hands `scheduled(controller, env, ctx)` the raw JS bindings, not the SDK's
    # wrappers in `self.env`: a handler that uses the argument fails on the twin as there.
    raw = raw_bindings(Env({"DATABASE": object(), "SAM_DOMAIN": "example.com"}))
    assert raw["SAM_DOMAIN"] == "example.com"
    with pytest.raises(TypeError, match=r"env\.DATABASE\.prepare: .*use self\.env"):
        raw["DATABASE"].prepare("SELECT 1")
