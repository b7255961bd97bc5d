"""The output ring: byte-capped, addressed by absolute offset."""

import random

import pytest

from agent.terminals.ring import COALESCE_BYTES, Evicted, Ring


def test_offsets_count_every_byte_ever_appended() -> None:
    ring = Ring(10)
    ring.append(b"hello")
    ring.append(b" world!")
    assert (ring.start, ring.end, len(ring)) == (2, 12, 10)
    assert ring.read(2, 100) == b"llo world!"
    assert ring.read(6, 3) == b"wor"
    assert ring.read(12, 100) == b""


def test_reading_an_evicted_offset_raises() -> None:
    ring = Ring(4)
    ring.append(b"abcdef")
    with pytest.raises(Evicted):
        ring.read(1, 10)
    assert ring.read(2, 10) == b"cdef"


def test_an_append_larger_than_the_ring_keeps_its_tail() -> None:
    ring = Ring(4)
    ring.append(b"xy")
    ring.append(b"0123456789")
    assert (ring.start, ring.end) == (8, 12)
    assert ring.read(8, 10) == b"6789"


def test_small_appends_are_coalesced_into_few_chunks() -> None:
    ring = Ring(256 * 1024)
    for _ in range(100_000):
        ring.append(b"k")
    assert ring.read(0, 200_000) == b"k" * 100_000
    assert len(ring._chunks) <= 100_000 // COALESCE_BYTES + 1


def test_random_appends_and_reads_match_a_plain_bytes_model() -> None:
    rng = random.Random(7)
    capacity = 5000
    ring = Ring(capacity)
    stream = bytearray()
    for _ in range(3000):
        data = rng.randbytes(rng.choice((1, 3, 50, 700, 4096, 6000)))
        ring.append(data)
        stream += data
        assert ring.end == len(stream)
        assert len(ring) == min(capacity, len(stream))
        offset = rng.randint(ring.start, ring.end)
        size = rng.randint(0, capacity)
        assert ring.read(offset, size) == bytes(stream[offset : offset + size])
        assert ring.read(ring.start, capacity) == bytes(stream[-capacity:])
