"""A byte-capped ring buffer of terminal output with a running byte offset.

Offsets count bytes since the session started: byte number `n` of the output
always has offset `n`, whatever has been evicted. The ring keeps the newest
`capacity` bytes, so it holds the offsets `start .. end - 1`.
"""

from __future__ import annotations

from collections import deque
from itertools import islice

# Small appends (keystroke echoes) are merged into the previous chunk so a ring
# full of one-byte reads does not cost one Python object per byte.
COALESCE_BYTES = 4096


class Evicted(Exception):
    """The requested offset is older than anything the ring still holds."""


class Ring:
    """The newest `capacity` bytes of a stream, addressed by absolute offset."""

    def __init__(self, capacity: int) -> None:
        assert capacity > 0, "ring capacity must be positive"
        self.capacity = capacity
        self._chunks: deque[bytes] = deque()
        self._size = 0  # bytes held, counting the skipped head of the first chunk
        self._skip = 0  # bytes of the first chunk already evicted
        self._end = 0

    @property
    def start(self) -> int:
        """Offset of the oldest byte still held."""
        return self._end - (self._size - self._skip)

    @property
    def end(self) -> int:
        """Offset one past the newest byte: the total number of bytes ever appended."""
        return self._end

    def __len__(self) -> int:
        return self._size - self._skip

    def append(self, data: bytes) -> None:
        """Add bytes at the end, evicting the oldest beyond the capacity."""
        if not data:
            return
        if len(data) >= self.capacity:
            self._chunks.clear()
            self._chunks.append(data[-self.capacity :])
            self._size = self.capacity
            self._skip = 0
            self._end += len(data)  # the bytes cut off still count
            return
        chunks = self._chunks
        if chunks and len(data) < COALESCE_BYTES and len(chunks[-1]) + len(data) <= COALESCE_BYTES:
            chunks[-1] += data
        else:
            chunks.append(data)
        self._size += len(data)
        self._end += len(data)
        excess = self._size - self._skip - self.capacity
        while excess > 0:
            head = len(chunks[0]) - self._skip
            if head <= excess:
                chunks.popleft()
                self._size -= self._skip + head
                self._skip = 0
                excess -= head
            else:
                self._skip += excess
                excess = 0

    def read(self, offset: int, max_bytes: int) -> bytes:
        """Up to `max_bytes` bytes starting at `offset` (empty when offset == end).

        Raises Evicted when offset < start; offsets past the end are a caller bug.
        """
        assert offset <= self._end, "offset beyond the end of the stream"
        if offset < self.start:
            raise Evicted(offset)
        wanted = min(self._end - offset, max_bytes)
        if wanted <= 0:
            return b""
        # Find the chunk holding `offset`, walking back from the newest: readers are
        # almost always near the end.
        index = len(self._chunks)
        chunk_start = self._end
        while chunk_start > offset:
            index -= 1
            chunk_start -= len(self._chunks[index])
        parts: list[memoryview] = []
        skip = offset - chunk_start
        remaining = wanted
        for chunk in islice(self._chunks, index, None):
            view = memoryview(chunk)[skip : skip + remaining]
            parts.append(view)
            remaining -= len(view)
            skip = 0
            if remaining == 0:
                break
        return parts[0].tobytes() if len(parts) == 1 else b"".join(parts)
