"""Tasks (issue 12): submit -> the agent's first chunk, and the agent's end of turn -> the
pull request open.

    .venv/bin/python bench/bench_tasks.py [--only start|pull] [--rounds 5] [--tasks 10]
        [--smoke]

Both run on the real local edge and node, a real workspace container and the real Claude
Code adapter on the scripted model, for a repository on the loopback GitHub (its App and
REST API) with git on a real git server (bench/task_world.py).

1. start: POST /api/projects/{pid}/tasks -> the first agent_message_chunk in the task's
   chat viewer on a warm node, vs a workspace and an agent session made by hand through
   the API (bench/project_chat_start.py's by_hand, the same rounds as New chat's).
   Each task is cancelled once measured. Target <= 1.2x.
2. pull: the agent's turn writes a file and ends; from the turn_ended message's time (as
   the node stamped it) to the pull request on the loopback GitHub, and to the task's
   pull_request_url in GET /api/tasks/{id}: commit, push and PR, p50 and p90.

Figures are printed, never asserted; a task that does not complete with its one pull
request fails the run. `--smoke`: one of each, no warm-up (its figures mean nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.agent_workspace import BenchError  # noqa: E402
from bench.project_chat_start import Start, first_chunk_in_chat, start_rounds  # noqa: E402
from bench.project_chat_support import ChatBench  # noqa: E402
from bench.task_world import TaskWorld, task_world  # noqa: E402
from tests.e2e.chat_support import CHAT_STOPPED_SECONDS  # noqa: E402
from tests.fakes.anthropic import Turn, text, tool_use  # noqa: E402
from tests.support.chat_viewer import ChatViewer, frame_type  # noqa: E402
from tests.support.wait import eventually, wait_for  # noqa: E402

PARTS = ("start", "pull")
TARGET_START_RATIO = 1.2
POLL_SECONDS = 0.01  # the pull request and the task are looked at this often
DONE_TIMEOUT_SECONDS = 300.0
SMOKE = {"rounds": 1, "tasks": 1}


def within(ok: bool) -> str:
    return "within target" if ok else "OVER target"


def new_task_in(world: TaskWorld) -> Start:
    async def new_task(bench: ChatBench, round_id: str) -> float:
        """Milliseconds from POST …/tasks to the first chunk in the task's chat viewer."""
        bench.model.script(Turn([text(f"Task {round_id} answers.")], stall=True))
        began = time.perf_counter()
        task = await asyncio.to_thread(world.submit, f"Answer {round_id}")
        elapsed = await first_chunk_in_chat(bench, task["chat_id"], began)
        chat = bench.user.chat(bench.project_id, task["chat_id"])
        if world.cancel(task["id"])["status"] != "cancelled":
            raise BenchError(f"task {task['id']} was not cancelled")
        bench.user.wait_for_status(bench.project_id, chat["id"], "stopped", CHAT_STOPPED_SECONDS)
        bench.user.delete_workspace(chat["workspace_id"])
        return elapsed

    return new_task


async def turn_end_to_pull(world: TaskWorld, round_id: str) -> tuple[float, float]:
    """(ms to the PR on GitHub, ms to the task's pull_request_url) from the turn_ended
    message's created_at, for one task whose agent writes a file."""
    bench = world.bench
    write = tool_use("Bash", {"command": f"printf {round_id} > {round_id}.md", "description": "w"})
    bench.model.script(Turn([text("Writing it."), write]), Turn([text("Done.")]))
    pulls_before = len(world.pulls())
    task = await asyncio.to_thread(world.submit, f"Write {round_id}")
    async with ChatViewer.connect(
        bench.edge, bench.user.session, bench.project_id, task["chat_id"]
    ) as viewer:
        ended = await viewer.until(lambda m: frame_type(m) == "turn_ended")
    turn_ended_at = datetime.fromisoformat(ended["created_at"]).timestamp()
    on_github, on_task = await asyncio.gather(
        eventually(
            lambda: time.time() if len(world.pulls()) > pulls_before else None,
            f"task {task['id']}'s pull request on GitHub",
            DONE_TIMEOUT_SECONDS,
            POLL_SECONDS,
        ),
        asyncio.to_thread(task_when, world, task["id"], lambda t: bool(t["pull_request_url"])),
    )
    await asyncio.to_thread(task_when, world, task["id"], lambda t: t["status"] == "completed")
    done = world.task(task["id"])
    [pull] = world.pulls()[pulls_before:]
    if pull["head"]["ref"] != done["branch"] or pull["html_url"] != done["pull_request_url"]:
        raise BenchError(f"task {task['id']}'s pull request is not its own: {pull}")
    bench.user.delete_workspace(bench.user.chat(bench.project_id, task["chat_id"])["workspace_id"])
    return (on_github - turn_ended_at) * 1000, (on_task - turn_ended_at) * 1000


def task_when(world: TaskWorld, task_id: str, reached: Callable[[dict[str, Any]], bool]) -> float:
    """time.time() when GET /api/tasks/{id} first answers a task that `reached` accepts;
    a task that failed or was cancelled first fails the run."""

    def seen_at() -> float | None:
        task = world.task(task_id)
        if task["status"] in ("failed", "cancelled"):
            raise BenchError(f"task {task_id} {task['status']} at {task['step']}: {task['error']}")
        return time.time() if reached(task) else None

    return wait_for(seen_at, f"task {task_id}", DONE_TIMEOUT_SECONDS, POLL_SECONDS)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


def start_part(world: TaskWorld, args: argparse.Namespace) -> None:
    product = new_task_in(world)
    tasks, hands = asyncio.run(
        start_rounds(world.bench, args.rounds, warm_up=not args.smoke, product=product)
    )
    task, hand = statistics.median(tasks), statistics.median(hands)
    print(
        f"Task submit -> first chunk on a warm node (median of {args.rounds}): {task:.0f} ms; "
        f"by hand through the API {hand:.0f} ms; ratio {task / hand:.2f}x   "
        f"{within(task / hand <= TARGET_START_RATIO)} ({TARGET_START_RATIO}x)"
    )


def pull_part(world: TaskWorld, args: argparse.Namespace) -> None:
    github: list[float] = []
    listed: list[float] = []
    for n in range(args.tasks):
        pr, url = asyncio.run(turn_end_to_pull(world, f"t{n}"))
        github.append(pr)
        listed.append(url)
    print(f"Agent's end of turn -> pull request open ({args.tasks} tasks):")
    for label, samples in (("PR on GitHub", github), ("task's pull_request_url", listed)):
        print(
            f"  {label:<24} p50 {statistics.median(samples):7.0f} ms   "
            f"p90 {percentile(samples, 0.9):7.0f} ms"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=PARTS)
    parser.add_argument("--rounds", type=int, default=5, help="part 1, per side")
    parser.add_argument("--tasks", type=int, default=10, help="part 2")
    parser.add_argument("--smoke", action="store_true", help="one of each")
    args = parser.parse_args()
    if args.smoke:
        vars(args).update(SMOKE)
    parts = [args.only] if args.only else list(PARTS)
    with tempfile.TemporaryDirectory() as directory, task_world(Path(directory)) as world:
        for part in parts:
            {"start": start_part, "pull": pull_part}[part](world, args)


if __name__ == "__main__":
    main()
