"""A frame too large for an outbox batch alone is cut to fit: its longest strings lose
their tails (so its JSON begins as the frame's does), or, when no few strings make it
fit (a huge plan of short entries), it is reduced to its type and seq; always marked."""

import json
from typing import Any

from agent.sessions.outbox import FRAME_BUDGET_BYTES, cut_to_fit


def size(frame: dict[str, Any]) -> int:
    return len(json.dumps(frame, separators=(",", ":"), ensure_ascii=False).encode())


def test_the_longest_strings_lose_their_tails() -> None:
    tool = {"title": "Read", "content": [{"text": "é" * 800_000}, {"text": "y" * 400_000}]}
    frame = {"seq": 7, "type": "update", "update": {"sessionUpdate": "tool_call", **tool}}
    cut = cut_to_fit(frame, FRAME_BUDGET_BYTES)
    assert size(cut) <= FRAME_BUDGET_BYTES and cut["truncated"] is True
    assert cut["update"]["title"] == "Read" and cut["seq"] == 7
    first, second = (part["text"] for part in cut["update"]["content"])
    assert first == "é" * len(first) and len(first) < 800_000  # whole characters only
    text, original = json.dumps(cut), json.dumps(frame)
    assert text[:60_000] == original[:60_000]
    assert frame["update"]["content"][0]["text"] == "é" * 800_000  # the frame is not changed
    assert second in ("y" * 400_000, "y" * len(second))


def test_a_frame_of_many_short_strings_keeps_its_type_and_seq() -> None:
    plan = [{"content": f"step {i:06d}", "status": "pending"} for i in range(60_000)]
    frame = {"seq": 3, "type": "update", "update": {"sessionUpdate": "plan", "entries": plan}}
    assert size(frame) > FRAME_BUDGET_BYTES
    assert cut_to_fit(frame, FRAME_BUDGET_BYTES) == {"seq": 3, "type": "update", "truncated": True}


def test_a_frame_that_fits_is_only_marked() -> None:
    frame = {"seq": 1, "type": "prompt", "text": "hi", "prompt_id": "p-1"}
    assert cut_to_fit(frame, FRAME_BUDGET_BYTES) == {**frame, "truncated": True}
