"""Part 3 of bench_project_chat.py: opening a chat of 5,000 messages in the browser.

Chromium (Playwright, as tests/browser run it) on the app's chat page,
/projects/{pid}/chats/{cid}: time from navigation start (the Performance API's time origin)
to the chat's newest message on screen, polled every animation frame. The chat's messages
are ingested through the ingest route with its node's callback token, in batches of 100 as
the outbox sends a backlog: turns of a prompt, answer chunks, a tool call and its result,
and the turn's end; the newest is a chunk carrying a marker the page must show.

Baseline in the same run: the same chat opened the same way while it held only its first
few messages (a marker message added to it), so the ratio says what the 5,000 cost.
Each side: one warm-up load, then LOADS fresh page loads; medians.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
from dataclasses import dataclass
from typing import Any

from playwright.sync_api import sync_playwright

from bench.project_chat_support import LOGIN, ChatBench, chunk_frame, ingest, outbox_message
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.support import app_url, sign_in
from wire.chat import MAX_BATCH_MESSAGES

SCREEN_TIMEOUT_MS = 30_000
TURN_FRAMES = 10
# The page's time origin is its navigation start: the moment the marker shows is the figure.
# Also when the history's first page (GET …/messages) had been answered, to tell the
# server's part from the page's.
ON_SCREEN = """(marker) => {
    if (!document.body.innerText.includes(marker)) return null;
    const history = performance.getEntriesByType("resource")
        .find((entry) => entry.name.includes("/messages"));
    return [performance.now(), history ? history.responseEnd : -1];
}"""


def history_frame(n: int) -> dict[str, Any]:
    """Frame `n` (from 0) of a long conversation: turns of TURN_FRAMES frames, each a
    prompt, the agent's answer in chunks, a tool call and its result, the turn's end."""
    seq, place = n + 1, n % TURN_FRAMES
    if place == 0:
        return {"seq": seq, "type": "prompt", "text": f"Question {n // TURN_FRAMES}?"}
    if place == TURN_FRAMES - 3:
        call = {
            "toolCallId": f"t{n}",
            "title": "Read notes.txt",
            "kind": "read",
            "status": "pending",
        }
        return {"seq": seq, "type": "update", "update": {"sessionUpdate": "tool_call", **call}}
    if place == TURN_FRAMES - 2:
        done = {"toolCallId": f"t{n - 1}", "status": "completed"}
        return {
            "seq": seq,
            "type": "update",
            "update": {"sessionUpdate": "tool_call_update", **done},
        }
    if place == TURN_FRAMES - 1:
        return {"seq": seq, "type": "turn_ended", "stop_reason": "end_turn"}
    return chunk_frame(seq, f"Line {n} of the answer. ")


async def add_messages(bench: ChatBench, chat: dict[str, Any], count: int, marker: str) -> None:
    """`count` messages of a conversation into the chat, the last a chunk holding `marker`."""
    tag = secrets.token_hex(4)
    frames = [history_frame(n) for n in range(count - 1)] + [chunk_frame(count, marker)]
    async with bench.ingest_client(chat) as client:
        for first in range(0, count, MAX_BATCH_MESSAGES):
            batch = [
                outbox_message(chat, f"fill-{tag}:{n}", frames[n])
                for n in range(first, min(count, first + MAX_BATCH_MESSAGES))
            ]
            await ingest(client, chat, batch)


def time_to_screen(
    bench: ChatBench, chat: dict[str, Any], marker: str, loads: int
) -> list[tuple[float, float]]:
    """Milliseconds from navigation start to `marker` on screen, and to the history's
    answer, per load (warm-up dropped)."""
    url = app_url(bench.edge, f"/projects/{chat['project_id']}/chats/{chat['id']}")
    samples = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1200, "height": 800})
        sign_in(context, bench.edge, LOGIN)
        for _ in range(loads + 1):
            page = context.new_page()
            page.goto(url, wait_until="commit")
            shown = page.wait_for_function(
                ON_SCREEN, arg=marker, polling="raf", timeout=SCREEN_TIMEOUT_MS
            )
            on_screen, history = shown.json_value()
            samples.append((float(on_screen), float(history)))
            page.close()
        browser.close()
    return samples[1:]


@dataclass(frozen=True)
class OpenFigures:
    """Medians, in milliseconds from navigation start."""

    short_screen: float
    short_history: float
    long_screen: float
    long_history: float


def medians(samples: list[tuple[float, float]]) -> tuple[float, float]:
    return statistics.median(s[0] for s in samples), statistics.median(s[1] for s in samples)


def open_figures(bench: ChatBench, chat: dict[str, Any], messages: int, loads: int) -> OpenFigures:
    """The chat opened while short, then once it holds `messages` more."""
    small_marker = f"small-{secrets.token_hex(4)}"
    asyncio.run(add_messages(bench, chat, 1, small_marker))
    short = medians(time_to_screen(bench, chat, small_marker, loads))
    big_marker = f"big-{secrets.token_hex(4)}"
    asyncio.run(add_messages(bench, chat, messages, big_marker))
    long = medians(time_to_screen(bench, chat, big_marker, loads))
    return OpenFigures(*short, *long)
