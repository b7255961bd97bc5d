"""A small, time-bounded cache that outlives one request: what an isolate may remember.

    live = IsolateCache[str, Owner](max_entries=4096, ttl_seconds=10.0)
    live.put(key, value, now)          now: the deployment's clock (worker/clock.py)
    live.get(key, now)                 the value, or None once it is ttl_seconds old
    live.discard(lambda value: ...)    drop every entry the predicate picks
    live.discard_key(key)

A module-level cache lives as long as its isolate: Cloudflare keeps many isolates of one
Worker, each with its own copy (the local edge is one isolate). So a change made through
one isolate can only evict there; every other isolate may serve the old value for up to
`ttl_seconds`, and whoever caches states that bound. Entries are evicted oldest first
when full, so the memory is bounded whatever the callers send.
"""

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

Key = TypeVar("Key")
Value = TypeVar("Value")


class IsolateCache(Generic[Key, Value]):
    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        assert max_entries > 0 and ttl_seconds > 0
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[Key, tuple[float, Value]] = OrderedDict()

    def get(self, key: Key, now: float) -> Value | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        # A clock that went backwards (another test's clock, a corrected host) is stale too.
        if not 0 <= now - stored_at < self.ttl_seconds:
            del self._entries[key]
            return None
        return value

    def put(self, key: Key, value: Value, now: float) -> None:
        self._entries.pop(key, None)
        self._entries[key] = (now, value)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def discard(self, picked: Callable[[Value], bool]) -> None:
        for key in [key for key, (_, value) in self._entries.items() if picked(value)]:
            del self._entries[key]

    def discard_key(self, key: Key) -> None:
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)
