"""The per-isolate cache: entries expire after their time bound, memory stays bounded."""

from worker.isolate_cache import IsolateCache


def test_an_entry_lives_until_its_time_bound() -> None:
    cache: IsolateCache[str, int] = IsolateCache(max_entries=10, ttl_seconds=5)
    cache.put("a", 1, now=100.0)
    assert cache.get("a", now=104.9) == 1
    assert cache.get("a", now=105.0) is None
    assert len(cache) == 0


def test_a_clock_that_went_back_finds_nothing() -> None:
    cache: IsolateCache[str, int] = IsolateCache(max_entries=10, ttl_seconds=5)
    cache.put("a", 1, now=100.0)
    assert cache.get("a", now=99.0) is None


def test_the_oldest_entries_go_when_full() -> None:
    cache: IsolateCache[int, int] = IsolateCache(max_entries=3, ttl_seconds=60)
    for key in range(5):
        cache.put(key, key * 10, now=0.0)
    assert len(cache) == 3
    assert [cache.get(key, now=1.0) for key in range(5)] == [None, None, 20, 30, 40]


def test_discard_drops_what_the_predicate_picks() -> None:
    cache: IsolateCache[str, int] = IsolateCache(max_entries=10, ttl_seconds=60)
    for key, value in {"a": 1, "b": 2, "c": 1}.items():
        cache.put(key, value, now=0.0)
    cache.discard(lambda value: value == 1)
    assert [cache.get(key, now=0.0) for key in "abc"] == [None, 2, None]
