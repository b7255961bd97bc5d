"""Project chat: ProjectData's append, the live path to 50 viewers, opening a long chat in the
browser, and New chat against doing the same by hand.

    .venv/bin/python bench/bench_project_chat.py [--only append|live|open|start]
        [--messages 5000] [--viewers 50] [--blocks 100] [--ingests 500] [--every-ms 10]
        [--history 5000] [--loads 5] [--rounds 3] [--smoke]

1. append (bench/project_chat_append.py): ProjectData's ingest on the twin, in this process,
   one message a call and 50 a call, vs raw sqlite3 inserts. Target >= 2,000 msg/s single.
2. live (bench/project_chat_live.py): the real edge, a local node, the real Claude Code
   adapter on the scripted model; 50 viewers of one chat. Agent update (the gateway's
   record of it) -> viewer, and ingest -> viewer. Target: p99 <= 100 ms.
3. open (bench/project_chat_open.py): Chromium opens a chat of 5,000 messages: navigation
   -> its newest message on screen, vs the same chat while it was short. Target <= 300 ms.
4. start (bench/project_chat_start.py): New chat -> first streamed chunk on a warm node, vs
   a workspace and an agent session made by hand through the API. Target <= 1.2x.

Figures are printed with their baselines from the same run, never asserted; a failed
request, a missing or out-of-order message or a wrong answer fails the run. Parts 2-4 need
a Docker Engine, the base image and tools/container (scripts/setup); part 3 Chromium.
`--smoke`: a few of everything, no warm-up round (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.project_chat_append import measure_append  # noqa: E402
from bench.project_chat_live import agent_to_viewers, ingest_to_viewers  # noqa: E402
from bench.project_chat_open import open_figures  # noqa: E402
from bench.project_chat_start import start_rounds  # noqa: E402
from bench.project_chat_support import ChatBench, chat_edge, percentiles  # noqa: E402

PARTS = ("append", "live", "open", "start")
TARGET_P99_MS, TARGET_OPEN_MS, TARGET_START_RATIO = 100.0, 300.0, 1.2
SMOKE = {
    "messages": 100, "viewers": 5, "blocks": 5, "ingests": 20, "every_ms": 10.0,
    "history": 300, "loads": 1, "rounds": 1,
}  # fmt: skip


def within(ok: bool) -> str:
    return "within target" if ok else "OVER target"


def live_part(bench: ChatBench, args: argparse.Namespace) -> None:
    chat = bench.active_chat("a chat for the live path")
    agent = asyncio.run(agent_to_viewers(bench, chat, args.viewers, args.blocks, args.every_ms))
    ingested = asyncio.run(
        ingest_to_viewers(bench, chat, args.viewers, args.ingests, args.every_ms)
    )
    print(f"Live path, {args.viewers} viewers of one chat:")
    for label, samples in (("agent update -> viewer", agent), ("ingest -> viewer", ingested)):
        p99 = sorted(samples)[min(len(samples) - 1, int(len(samples) * 0.99))]
        print(f"  {label:<24} {percentiles(samples)}   {within(p99 <= TARGET_P99_MS)}")
    bench.user.delete_workspace(chat["workspace_id"])  # the node is left warm for part 4


def open_part(bench: ChatBench, args: argparse.Namespace) -> None:
    chat = bench.active_chat("a chat to fill")
    shown = open_figures(bench, chat, args.history, args.loads)
    bench.user.delete_workspace(chat["workspace_id"])
    print(
        f"Opening a chat in Chromium (median of {args.loads}): {args.history:,} messages "
        f"{shown.long_screen:.0f} ms (its history answered at {shown.long_history:.0f} ms); "
        f"the same chat when short {shown.short_screen:.0f} ms (at {shown.short_history:.0f} "
        f"ms); ratio {shown.long_screen / shown.short_screen:.2f}x   "
        f"{within(shown.long_screen <= TARGET_OPEN_MS)} ({TARGET_OPEN_MS:.0f} ms)"
    )


def start_part(bench: ChatBench, args: argparse.Namespace) -> None:
    chats, hands = asyncio.run(start_rounds(bench, args.rounds, warm_up=not args.smoke))
    chat, hand = statistics.median(chats), statistics.median(hands)
    print(
        f"New chat -> first chunk on a warm node (median of {args.rounds}): {chat:.0f} ms; "
        f"by hand through the API {hand:.0f} ms; ratio {chat / hand:.2f}x   "
        f"{within(chat / hand <= TARGET_START_RATIO)} ({TARGET_START_RATIO}x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=PARTS)
    parser.add_argument("--messages", type=int, default=5_000, help="part 1, per side")
    parser.add_argument("--viewers", type=int, default=50)
    parser.add_argument("--blocks", type=int, default=100, help="text blocks of the turn")
    parser.add_argument("--ingests", type=int, default=500, help="messages posted one a call")
    parser.add_argument(
        "--every-ms",
        type=float,
        default=10.0,
        help="between the model's deltas, and between those posts",
    )
    parser.add_argument("--history", type=int, default=5_000, help="messages of the long chat")
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="a few of everything")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    parts = [args.only] if args.only else list(PARTS)
    with tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        if "append" in parts:
            print(asyncio.run(measure_append(folder / "append", args.messages)).report())
        edge_parts = [part for part in parts if part != "append"]
        if not edge_parts:
            return
        (folder / "edge").mkdir()
        with chat_edge(folder / "edge") as bench:
            for part in edge_parts:
                {"live": live_part, "open": open_part, "start": start_part}[part](bench, args)


if __name__ == "__main__":
    main()
