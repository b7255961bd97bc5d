"""Part 3 of bench_project_chat.py: opening a chat of 5,000 messages in the browser.

Chromium (Playwright, as tests/browser run it) on the app's chat page,
/projects/{pid}/chats/{cid}: time from navigation start (the Performance API's time origin)
to the chat's newest message on screen, polled every animation frame. The chat's messages
are ingested through the ingest route with its node's callback token, in batches of 100 as
the outbox sends a backlog; the newest carries a marker the page must show.

Baseline in the same run: the same chat opened the same way while it held only its first
few messages (a marker message added to it), so the ratio says what the 5,000 cost.
Each side: one warm-up load, then LOADS fresh page loads; medians.
"""

from __future__ import annotations

import asyncio
import secrets
import statistics
from typing import Any

from playwright.sync_api import sync_playwright

from bench.project_chat_support import LOGIN, ChatBench, chunk_message, ingest
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS
from tests.browser.support import app_url, sign_in
from wire.chat import MAX_BATCH_MESSAGES

SCREEN_TIMEOUT_MS = 30_000
# The page's time origin is its navigation start: the moment the marker shows is the figure.
ON_SCREEN = """(marker) => document.body.innerText.includes(marker) ? performance.now() : null"""


async def add_messages(bench: ChatBench, chat: dict[str, Any], count: int, marker: str) -> None:
    """`count` agent chunks into the chat, the last one holding `marker`."""
    tag = secrets.token_hex(4)
    async with bench.ingest_client(chat) as client:
        for first in range(0, count, MAX_BATCH_MESSAGES):
            batch = [
                chunk_message(
                    chat, f"fill-{tag}:{n}", n + 1, marker if n == count - 1 else f"line {n}\n"
                )
                for n in range(first, min(count, first + MAX_BATCH_MESSAGES))
            ]
            await ingest(client, chat, batch)


def time_to_screen(bench: ChatBench, chat: dict[str, Any], marker: str, loads: int) -> list[float]:
    """Milliseconds from navigation start to `marker` on screen, per load (warm-up dropped)."""
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
            samples.append(float(shown.json_value()))
            page.close()
        browser.close()
    return samples[1:]


def open_figures(
    bench: ChatBench, chat: dict[str, Any], messages: int, loads: int
) -> tuple[float, float]:
    """(small chat, chat of `messages`) median milliseconds to the first screen."""
    small_marker = f"small-{secrets.token_hex(4)}"
    asyncio.run(add_messages(bench, chat, 1, small_marker))
    small = statistics.median(time_to_screen(bench, chat, small_marker, loads))
    big_marker = f"big-{secrets.token_hex(4)}"
    asyncio.run(add_messages(bench, chat, messages, big_marker))
    big = statistics.median(time_to_screen(bench, chat, big_marker, loads))
    return small, big
