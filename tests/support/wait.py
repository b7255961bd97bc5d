"""The one poll helper of the suite: wait until something a user would see is true
(`wait_for` from plain code, `eventually` inside the event loop)."""

import asyncio
import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")
POLL_SECONDS = 0.1


def wait_for(check: Callable[[], T], what: str, timeout: float, poll: float = POLL_SECONDS) -> T:
    """The first truthy result of `check()`; fails naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


async def eventually(
    check: Callable[[], T], what: str, timeout: float, poll: float = POLL_SECONDS
) -> T:
    """`wait_for` for a coroutine: the event loop keeps running between checks."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        await asyncio.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def bearer(token: str) -> dict[str, Any]:
    """The headers of a request authenticated by `token`."""
    return {"authorization": f"Bearer {token}"}
