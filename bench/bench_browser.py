"""Browser benchmark: the web app's terminal in Chromium, against the WebSocket underneath it.

    .venv/bin/python bench/bench_browser.py [--loads 10] [--keystrokes 200] [--smoke]

On the real local edge, a local node and a running workspace (Docker backend):

1. Workspace page → interactive prompt: `--loads` fresh page loads of /workspaces/{id},
   each timed from navigation start (the Performance API's time origin) to the terminal's
   first output (the app's `sam:terminal-first-output` mark) and to a prompt rendered on
   screen; p50 and p90. Each load fetches a terminal token, opens the socket through
   ws-{id}, lists the tabs and attaches (replaying the ring).
2. Keystroke → echo on screen: a key pressed with Playwright, from its `keydown` in the page
   to the DOM mutation of xterm.js's rows that shows the echo (so the figure includes
   Chromium's network stack, xterm's parse and its next animation frame: 16.7 ms apart in
   headless Chromium), p50 and p99. Baseline in the same run: one byte sent as an input
   frame on an aiohttp WebSocket through the same ws-{id} proxy to its echoed output frame.
   Both pause KEY_PAUSE_SECONDS between keystrokes.

Needs Chromium (scripts/chromium), a Docker Engine and the base image. Nothing asserts on
time; a refused request, an error frame or a closed socket ends the run. `--smoke` is one
load and three keystrokes a side: that it runs, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS  # noqa: E402
from tests.browser.support import (  # noqa: E402
    api_client,
    app_url,
    create_running_workspace,
    sign_in,
    wait_for_prompt,
)
from tests.fixtures.repos import make_repo  # noqa: E402
from tests.support.edge import Edge, running_edge  # noqa: E402
from tests.support.terminal_client import decode_output, encode_input  # noqa: E402

LOGIN = "bench-browser"
KEY_TIMEOUT_MS = 15_000  # a bound, not a figure: a busy machine may take seconds
# Both sides pause this long between keystrokes, as a typist does: an idle connection (and
# an idle CPU) answers more slowly than one kept busy back to back.
KEY_PAUSE_SECONDS = 0.05
SMOKE_LOADS = 1
SMOKE_KEYSTROKES = 3


class BenchError(RuntimeError):
    """An answer that was not a success: the figures would mean nothing."""


async def receive(ws: aiohttp.ClientWebSocketResponse) -> aiohttp.WSMessage:
    """The next frame; an error frame or the end of the socket ends the run."""
    message = await ws.receive()
    if message.type is aiohttp.WSMsgType.TEXT:
        frame = json.loads(message.data)
        if frame.get("type") in ("error", "exit"):
            raise BenchError(f"the terminal sent {frame}")
    elif message.type is not aiohttp.WSMsgType.BINARY:
        raise BenchError(f"the terminal WebSocket ended: {message.type.name} {ws.close_code}")
    return message


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p50 = statistics.median(ordered)
    p90 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"p50 {p50:7.1f} ms  p90 {p90:7.1f} ms  p99 {p99:7.1f} ms  (n={len(samples)})"


def page_loads(page: Page, edge: Edge, workspace_id: str, loads: int) -> tuple[list, list]:
    first_output, prompt = [], []
    url = app_url(edge, f"/workspaces/{workspace_id}")
    for _ in range(loads):
        page.goto("about:blank")
        page.goto(url)
        wait_for_prompt(page)
        on_screen = page.evaluate("() => performance.now()")
        mark = page.evaluate(
            "() => performance.getEntriesByName('sam:terminal-first-output')[0]?.startTime"
        )
        first_output.append(mark)
        prompt.append(on_screen)
    return first_output, prompt


KEY_PROBE = """() => {
    const rows = document.querySelector(".terminal-pane-active .xterm-rows");
    const probe = (globalThis.__keyProbe = { samples: [], since: null, before: "" });
    document.addEventListener("keydown", (event) => {
        if (event.key !== "a") return;
        probe.since = performance.now();
        probe.before = rows.textContent;
    }, true);
    new MutationObserver(() => {
        if (probe.since !== null && rows.textContent !== probe.before) {
            probe.samples.push(performance.now() - probe.since);
            probe.since = null;
        }
    }).observe(rows, { subtree: true, childList: true, characterData: true });
}"""


def browser_keystrokes(page: Page, count: int) -> list[float]:
    page.evaluate(KEY_PROBE)
    page.locator(".terminal-pane-active .xterm-helper-textarea").focus()
    for index in range(count):
        if index and index % 50 == 0:  # keep the line short: erase it (not measured)
            page.evaluate("() => { globalThis.__keyProbe.since = null; }")
            page.keyboard.press("Control+U")
            page.wait_for_timeout(100)
        page.wait_for_timeout(KEY_PAUSE_SECONDS * 1000)
        # Counted before the key: an echo quicker than this process would otherwise be
        # counted in `seen` and the wait below would be for a sample that never comes.
        seen = page.evaluate("() => globalThis.__keyProbe.samples.length")
        page.keyboard.press("a")
        page.wait_for_function(
            "([n]) => globalThis.__keyProbe.samples.length >= n",
            arg=[seen + 1],
            timeout=KEY_TIMEOUT_MS,
        )
    page.keyboard.press("Control+U")
    return page.evaluate("() => globalThis.__keyProbe.samples")


async def socket_keystrokes(edge: Edge, workspace_id: str, count: int) -> list[float]:
    with api_client(edge, LOGIN) as client:
        reply = client.post("/api/terminal/token", json={"workspace_id": workspace_id})
    if reply.status_code != 200:
        raise BenchError(f"POST /api/terminal/token answered {reply.status_code}: {reply.text}")
    minted = reply.json()
    target = urlsplit(minted["url"])
    url = f"ws://127.0.0.1:{edge.port}{target.path}?token={minted['token']}"
    samples: list[float] = []
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, headers={"Host": target.netloc}) as ws,
    ):
        await ws.send_json({"type": "create", "request_id": "r1", "cols": 120, "rows": 40})
        session_id = None
        while session_id is None:
            message = await receive(ws)
            if message.type is aiohttp.WSMsgType.TEXT and message.json()["type"] == "created":
                session_id = message.json()["session"]["session_id"]
        await asyncio.sleep(0.5)  # let the prompt arrive and drain it
        while True:
            try:
                await asyncio.wait_for(receive(ws), 0.2)
            except TimeoutError:
                break
        for index in range(count):
            if index and index % 50 == 0:
                await ws.send_bytes(encode_input(session_id, b"\x15"))
                await asyncio.sleep(0.1)
                while True:
                    try:
                        await asyncio.wait_for(receive(ws), 0.05)
                    except TimeoutError:
                        break
            await asyncio.sleep(KEY_PAUSE_SECONDS)
            started = time.perf_counter()
            await ws.send_bytes(encode_input(session_id, b"a"))
            while True:
                message = await receive(ws)
                if message.type == aiohttp.WSMsgType.BINARY:
                    _, _, data = decode_output(message.data)
                    if b"a" in data:
                        break
            samples.append((time.perf_counter() - started) * 1000)
        await ws.send_json({"type": "close", "request_id": "r2", "session_id": session_id})
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--loads", type=int, default=10)
    parser.add_argument("--keystrokes", type=int, default=200)
    parser.add_argument("--smoke", action="store_true", help="one load, three keystrokes")
    args = parser.parse_args()
    if args.smoke:
        args.loads, args.keystrokes = SMOKE_LOADS, SMOKE_KEYSTROKES
    with tempfile.TemporaryDirectory(prefix="sam-bench-browser-") as work:
        work_dir = Path(work)
        repo = make_repo(work_dir, "bench-repo")
        with running_edge(work_dir / ".sam") as edge:
            workspace = create_running_workspace(edge, LOGIN, str(repo))
            try:
                with sync_playwright() as playwright:
                    browser = playwright.chromium.launch(
                        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
                    )
                    context = browser.new_context(viewport={"width": 1200, "height": 800})
                    sign_in(context, edge, LOGIN)
                    page = context.new_page()
                    first_output, prompt = page_loads(page, edge, workspace["id"], args.loads)
                    keys = browser_keystrokes(page, args.keystrokes)
                    browser.close()
                socket_keys = asyncio.run(socket_keystrokes(edge, workspace["id"], args.keystrokes))
            finally:
                with api_client(edge, LOGIN) as client:
                    deleted = client.delete(f"/api/workspaces/{workspace['id']}")
                if deleted.status_code >= 300:
                    raise BenchError(f"DELETE answered {deleted.status_code}: {deleted.text}")
    print("workspace page load → terminal (from navigation start)")
    print(f"  first terminal output   {summary(first_output)}")
    print(f"  prompt on screen        {summary(prompt)}")
    print("keystroke → echo")
    print(f"  browser (keydown → xterm.js DOM)   {summary(keys)}")
    print(f"  WebSocket (input frame → output)   {summary(socket_keys)}")
    ratio = statistics.median(keys) / statistics.median(socket_keys)
    print(f"  browser / WebSocket p50 ratio      {ratio:.2f}x")


if __name__ == "__main__":
    main()
