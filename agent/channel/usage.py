"""Token usage read off a Messages API answer as it streams past the model proxy.

An SSE answer (`stream: true`) reports usage twice: `message_start` carries the input
side (input_tokens, cache_creation_input_tokens, cache_read_input_tokens) and a first
output count, and each `message_delta` the cumulative output_tokens (newer APIs may
repeat the input side there too). A whole-JSON answer carries `usage` once. The meter
only reads: the bytes go to the adapter unchanged, whatever it makes of them.
"""

import json
from typing import Any

from agent.persistence import USAGE_COUNTS

TOKEN_COUNTS = tuple(name for name in USAGE_COUNTS if name != "requests")
# An SSE line longer than this is not a usage event (those are small): skipped, not kept.
MAX_SSE_LINE_BYTES = 1024 * 1024
# A JSON answer longer than this is not read for usage (Messages answers are far smaller).
MAX_JSON_BYTES = 8 * 1024 * 1024


class UsageMeter:
    """Feed it the answer's bytes in order; `counts()` is the usage seen so far."""

    def __init__(self, content_type: str) -> None:
        self._sse = content_type.split(";")[0].strip().lower() == "text/event-stream"
        self._pending = bytearray()
        self._skipping = False  # inside an over-long line
        self._usage: dict[str, int] = {}

    def feed(self, chunk: bytes) -> None:
        if not self._sse:
            if len(self._pending) + len(chunk) <= MAX_JSON_BYTES:
                self._pending += chunk
            return
        self._pending += chunk
        while (end := self._pending.find(b"\n")) >= 0:
            line = bytes(self._pending[:end]).rstrip(b"\r")
            del self._pending[: end + 1]
            if self._skipping:
                self._skipping = False
            elif line.startswith(b"data:"):
                self._event(line[5:])
        if len(self._pending) > MAX_SSE_LINE_BYTES:
            self._pending.clear()
            self._skipping = True

    def counts(self) -> dict[str, int]:
        """Token counts of the answer (zeros where none were reported)."""
        if not self._sse and self._pending:
            body = _json(bytes(self._pending))
            self._pending.clear()
            if body.get("type") == "message":
                self._take(body.get("usage"))
        return {name: self._usage.get(name, 0) for name in TOKEN_COUNTS}

    def _event(self, data: bytes) -> None:
        event = _json(data)
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message")
            self._take(message.get("usage") if isinstance(message, dict) else None)
        elif kind == "message_delta":
            self._take(event.get("usage"))

    def _take(self, usage: Any) -> None:
        """Counts are totals so far, not increments: the newest wins."""
        if not isinstance(usage, dict):
            return
        for name in TOKEN_COUNTS:
            value = usage.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                self._usage[name] = value


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
