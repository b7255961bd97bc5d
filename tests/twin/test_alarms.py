"""Durable Object alarms: persisted, fired on the clock, retried with backoff."""

import datetime
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.twin.do_fixtures import Twin
from twin.alarms import ALARM_MAX_RETRIES, AlarmInfo, retry_delay_seconds
from twin.clock import ManualClock
from twin.entrypoints import DurableObject
from twin.errors import DurableObjectError


class Reminder(DurableObject):
    """Records every alarm in its storage; fails while `failures_left` says so."""

    async def arm(self, delay_seconds: float, failures: int = 0, repeat: bool = False) -> None:
        now_ms = self.env.clock.now() * 1000
        await self.ctx.storage.put({"failures_left": failures, "repeat": repeat})
        await self.ctx.storage.setAlarm(now_ms + delay_seconds * 1000)

    async def alarm(self, info: AlarmInfo) -> None:
        fired = await self.ctx.storage.get("fired") or []
        fired.append(
            {
                "at": self.env.clock.now(),
                "retryCount": info.retryCount,
                "isRetry": info.isRetry,
                "alarm_inside": await self.ctx.storage.getAlarm(),
            }
        )
        await self.ctx.storage.put("fired", fired)
        failures_left = await self.ctx.storage.get("failures_left")
        if failures_left:
            await self.ctx.storage.put("failures_left", failures_left - 1)
            raise RuntimeError("alarm handler failed")
        if await self.ctx.storage.get("repeat"):
            await self.ctx.storage.setAlarm(self.env.clock.now() * 1000 + 60_000)

    async def fired(self) -> list[dict[str, Any]]:
        return await self.ctx.storage.get("fired") or []

    async def current_alarm(self) -> int | None:
        return await self.ctx.storage.getAlarm()

    async def cancel(self) -> None:
        await self.ctx.storage.deleteAlarm()

    async def arm_then_roll_back(self, delay_seconds: float) -> None:
        async def closure(txn: Any) -> None:
            await txn.setAlarm(self.env.clock.now() * 1000 + delay_seconds * 1000)
            txn.rollback()

        await self.ctx.storage.transaction(closure)


class NoHandler(DurableObject):
    async def arm(self) -> None:
        await self.ctx.storage.setAlarm(0)


@pytest.fixture
async def twin(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Twin]:
    async with Twin(tmp_path, clock) as running:
        running.env.clock = clock
        running.bind("REMINDER", Reminder)
        yield running


def reminder(twin: Twin, name: str = "r") -> Any:
    return twin.env.REMINDER.getByName(name)


async def test_get_set_and_delete_alarm(twin: Twin) -> None:
    stub = reminder(twin)
    assert await stub.current_alarm() is None
    await stub.arm(30)
    assert await stub.current_alarm() == int((twin.clock.now() + 30) * 1000)
    await stub.cancel()
    assert await stub.current_alarm() is None
    await twin.advance(60)
    assert await stub.fired() == []


async def test_an_alarm_fires_when_due_and_is_cleared_before_the_handler(twin: Twin) -> None:
    stub = reminder(twin)
    start = twin.clock.now()
    await stub.arm(10)
    await twin.advance(9.9)
    assert await stub.fired() == []
    await twin.advance(0.1)
    assert await stub.fired() == [
        {"at": start + 10, "retryCount": 0, "isRetry": False, "alarm_inside": None}
    ]
    assert await stub.current_alarm() is None


async def test_an_alarm_set_by_the_handler_stands(twin: Twin) -> None:
    stub = reminder(twin)
    await stub.arm(1, 0, True)
    await twin.advance(1)
    assert await stub.current_alarm() == int((twin.clock.now() + 60) * 1000)
    await twin.advance(60)
    assert len(await stub.fired()) == 2


async def test_an_alarm_set_before_a_restart_fires_after_it(twin: Twin) -> None:
    await reminder(twin).arm(10)
    restarted = await twin.restart()
    restarted.env.clock = twin.clock
    restarted.bind("REMINDER", Reminder)  # bound before start, as twin.env does
    async with restarted:
        await restarted.advance(10)
        fired = await reminder(restarted).fired()
    assert [f["retryCount"] for f in fired] == [0]


async def test_a_failing_alarm_is_retried_with_backoff_then_abandoned(twin: Twin) -> None:
    stub = reminder(twin)
    start = twin.clock.now()
    await stub.arm(5, 100)
    await twin.advance(5)
    expected_at = start + 5
    for retry in range(1, ALARM_MAX_RETRIES + 1):
        delay = retry_delay_seconds(retry - 1)
        await twin.advance(delay - 0.5)
        assert len(await stub.fired()) == retry  # not yet
        await twin.advance(0.5)
        expected_at += delay
        last = (await stub.fired())[-1]
        assert (last["at"], last["retryCount"], last["isRetry"]) == (expected_at, retry, True)
    await twin.advance(24 * 3600)
    assert len(await stub.fired()) == 1 + ALARM_MAX_RETRIES
    assert await stub.current_alarm() is None


async def test_backoff_starts_at_two_seconds_and_doubles() -> None:
    assert [retry_delay_seconds(n) for n in range(ALARM_MAX_RETRIES)] == [2, 4, 8, 16, 32, 64]


async def test_a_retry_that_succeeds_ends_the_retries(twin: Twin) -> None:
    stub = reminder(twin)
    await stub.arm(1, 2)
    await twin.advance(1)
    await twin.advance(2)
    await twin.advance(4)
    await twin.advance(3600)
    assert [f["retryCount"] for f in await stub.fired()] == [0, 1, 2]


async def test_alarms_accept_a_datetime(twin: Twin) -> None:
    stub = reminder(twin)
    when = datetime.datetime.fromtimestamp(twin.clock.now() + 5, tz=datetime.UTC)
    storage = twin.env.REMINDER.host(stub.id).storage
    await storage.setAlarm(when)
    assert await stub.current_alarm() == int((twin.clock.now() + 5) * 1000)


async def test_a_rolled_back_alarm_does_not_fire(twin: Twin) -> None:
    stub = reminder(twin)
    await stub.arm_then_roll_back(1)
    assert await stub.current_alarm() is None
    await twin.advance(10)
    assert await stub.fired() == []


async def test_each_object_has_its_own_alarm(twin: Twin) -> None:
    await reminder(twin, "a").arm(1)
    await reminder(twin, "b").arm(2)
    await twin.advance(1)
    assert len(await reminder(twin, "a").fired()) == 1
    assert await reminder(twin, "b").fired() == []
    await twin.advance(1)
    assert len(await reminder(twin, "b").fired()) == 1


async def test_a_class_without_an_alarm_handler_cannot_set_one(twin: Twin) -> None:
    stub = twin.bind("NO_HANDLER", NoHandler).getByName("x")
    with pytest.raises(DurableObjectError, match=r"must have an alarm\(\) handler"):
        await stub.arm()
