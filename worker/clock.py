"""Time, injected: the one way worker and Durable Object code asks what time it is.

Deployed code runs on `SystemClock`; tests pass the twin's `ManualClock` (twin/clock.py),
which satisfies this protocol without the worker importing the twin, so warm windows,
token lifetimes and cron's deadlines are tested without sleeping.
"""

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()
