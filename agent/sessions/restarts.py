"""How often an agent session's adapter is started again: at most `limit` times within a
sliding window; the first at once, the next after a backoff that doubles (base, 2 x base,
4 x base, ...)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

from agent.config import AgentConfig

Clock = Callable[[], float]  # monotonic seconds


class RestartBudget:
    def __init__(self, config: AgentConfig, clock: Clock = time.monotonic) -> None:
        self.limit = config.agent_restarts
        self._window_seconds = config.agent_restart_window_seconds
        self._backoff_seconds = config.agent_restart_backoff_seconds
        self._clock = clock
        self._recent: deque[float] = deque()  # when each restart within the window began

    def available(self) -> bool:
        """Whether a restart is left within the window."""
        now = self._clock()
        while self._recent and now - self._recent[0] >= self._window_seconds:
            self._recent.popleft()
        return len(self._recent) < self.limit

    def take(self) -> tuple[int, float]:
        """(attempt, delay in seconds) of the next restart; call when `available`."""
        assert self.available()
        earlier = len(self._recent)
        delay = self._backoff_seconds * 2 ** (earlier - 1) if earlier else 0.0
        self._recent.append(self._clock())
        return len(self._recent), delay
