"""Agent sessions: the ACP gateway of a real node agent vs the same adapter driven directly.

    .venv/bin/python bench/bench_agent_session.py [--rounds 7] [--viewers 50]
                                                 [--updates 1000] [--every-ms 10]
                                                 [--only adapter|viewers] [--smoke]

A real `python -m agent` (docker backend) reporting to the control-plane double, a real
workspace container on its own sandboxed network, the real Claude Code adapter from the
read-only tools mount, the scripted Messages API (tests/fakes/anthropic.py). In one run:

1. turn: a scripted three-step turn (the model asks for a Read, then a Write, then
   answers): prompt -> first agent_message_chunk and prompt -> end of turn, through the
   gateway (POST .../prompt, frames on a viewer WebSocket) and the model proxy on the
   workspace's channel, vs the same adapter with the same client capabilities as a bare
   `docker exec -i` in the same container driven by the ACP SDK (bench/acp_direct.py),
   talking to the same scripted model directly: the model also listens on a socket in the
   container's network namespace, so the adapter reaches it on its own loopback.
   Interleaved round by round after one warm-up round (a container's first Claude Code
   turn pays seconds of one-time set-up); prompt -> the model's first request is shown too,
   to tell the way in from the way back. Targets: end of turn <= 1.1x, first chunk <= +20 ms.
2. start: POST /agent-sessions -> 201 (adapter ready) vs the bare exec doing initialize,
   session/new and session/set_mode (what the gateway does before its 201). Target <= 1.2x.
3. fan-out: V viewers on one session receiving N updates (stand-in ACP agent, see below),
   each update stamped with the wall clock when the agent wrote it: update -> viewer
   latency over every (viewer, update); the node agent's RSS (psutil) before and after.
   Target: p99 <= 50 ms. The stand-in (tests/agent/sessions/stand_in_agent.mjs, `updates N
   EVERY_MS`) runs as the "claude-code" adapter of a second node agent whose container
   tools folder (SAM_CONTAINER_TOOLS) this run makes: the real Node binary beside it, the
   gateway, store and viewers the real ones (Claude Code would put its own processing of
   1,000 model deltas into the figure). The CPU the agent and the viewers used is shown.

Prints medians and p99s, never fails on time; every answer is checked, and a failed
request, a missing or out-of-order frame, or an unexpected turn fails the run. Whatever
this run made (containers, networks, the tools volume) carries its own node ids and is
removed at the end. `--smoke`: one round of each part, 10 viewers x 200 updates.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.config import CHECKOUT_CONTAINER_TOOLS  # noqa: E402
from agent.sessions.tools import (  # noqa: E402
    ADAPTERS,
    REQUIRED_FILE,
    TOOLS_TARGET,
    installed,
    volume_name,
)
from bench.acp_direct import AdapterFailed, DirectAdapter  # noqa: E402
from bench.agent_session_support import (  # noqa: E402
    BenchFailure,
    Viewer,
    Workspace,
    bring_up,
    checked,
    chunk_text,
    delete,
    expect,
    in_container,
    remove_leftovers,
)
from tests.fakes.anthropic import ScriptedModel, Turn, text, tool_use  # noqa: E402
from tests.fixtures.repos import make_repo  # noqa: E402
from tests.support.agent import AgentProcess, start_agent  # noqa: E402
from tests.support.container_net import listen_in_container  # noqa: E402
from tests.support.control_plane import ControlPlaneDouble  # noqa: E402
from wire.callbacks import AgentCredential  # noqa: E402

BASE_IMAGE = "sam-workspace-base:bookworm"
STAND_IN = ROOT / "tests" / "agent" / "sessions" / "stand_in_agent.mjs"
# The owner's key, shaped like the channel's stand-in token (agent/channel/tokens.py) that
# the gateway's adapter holds: measured here, claude-agent-acp 0.101 given an `sk-ant-...`
# key spends ~10 s more in session/new offline (its SDK start), which would flatter the gateway.
KEY = secrets.token_urlsafe(32)
SECRET_WORD = "pineapple"
DEFAULT_ROUNDS, DEFAULT_VIEWERS, DEFAULT_UPDATES = 7, 50, 1000
# 100 updates a second: Claude Code streaming fast (a burst, 0, measures the fan-out's backlog).
DEFAULT_EVERY_MS = 10.0
TARGET_END_RATIO, TARGET_FIRST_CHUNK_MS, TARGET_START_RATIO, TARGET_P99_MS = 1.1, 20.0, 1.2, 50.0
BYPASS_MODE = "bypassPermissions"  # the adapter's mode for SAM's `bypass` (session.py)


# --- 1. a three-step turn -------------------------------------------------------------------


def script_turn(model: ScriptedModel, workspace: Workspace, name: str) -> tuple[str, str]:
    """Three model answers (Read, Write, text) for one turn; (prompt, final answer)."""
    folder = workspace.target.folder
    answer = f"Done ({name}): the word is {SECRET_WORD}."
    read = tool_use("Read", {"file_path": f"{folder}/notes.txt"})
    write = tool_use("Write", {"file_path": f"{folder}/{name}.txt", "content": f"{name}\n"})
    model.script(
        Turn([text(f"Reading notes ({name})."), read]), Turn([write]), Turn([text(answer)])
    )
    return f"read notes.txt and write {name}.txt", answer


def check_turn(
    model: ScriptedModel, before: int, workspace: Workspace, name: str, said: str, answer: str
) -> None:
    requests = model.main_requests[before:]
    expect(len(requests) == 3 and model.remaining == 0, f"{name}: {len(requests)} model turns")
    expect(SECRET_WORD in json.dumps(requests[1]["messages"][-1]), f"{name}: no Read result")
    expect(said.endswith(answer), f"{name}: the agent said {said[-200:]!r}")
    written = in_container(workspace, "cat", f"{workspace.target.folder}/{name}.txt")
    expect(written == f"{name}\n", f"{name}.txt holds {written!r}")


async def gateway_turn(
    http: aiohttp.ClientSession, model: ScriptedModel, workspace: Workspace, session: str,
    viewer: Viewer, name: str,
) -> tuple[float, float, float]:  # fmt: skip
    """(prompt -> first chunk, -> turn_ended, -> the model's first request) in ms, through
    the gateway (the last splits the gap: the way in, or the model's way and back)."""
    prompt, answer = script_turn(model, workspace, name)
    before = len(model.main_requests)
    began = time.perf_counter()
    async with http.post(f"{workspace.base}/{session}/prompt", json={"text": prompt}) as a:
        await checked(a, 202)
    first, said, prompted = None, "", False
    while True:
        at, frame = await viewer.next()
        prompted = prompted or (frame["type"] == "prompt" and frame["text"] == prompt)
        if prompted and frame["type"] == "update" and (chunk := chunk_text(frame["update"])):
            first, said = first or at, said + chunk
        if prompted and frame["type"] == "turn_ended":
            expect(frame["stop_reason"] == "end_turn", f"{name}: {frame}")
            break
    expect(first is not None, f"{name}: no agent_message_chunk")
    check_turn(model, before, workspace, name, said, answer)
    asked = model.main_request_times[before]
    return (first - began) * 1000, (at - began) * 1000, (asked - began) * 1000


async def direct_turn(
    adapter: DirectAdapter, model: ScriptedModel, workspace: Workspace, name: str
) -> tuple[float, float, float]:
    """The same, the adapter driven directly over the exec's stdio."""
    prompt, answer = script_turn(model, workspace, name)
    before, seen = len(model.main_requests), len(adapter.client.updates)
    began = time.perf_counter()
    stop_reason = await adapter.prompt(prompt)
    ended = time.perf_counter()
    expect(stop_reason == "end_turn" and not adapter.client.problems, f"{name}: {stop_reason}")
    chunks = [(at, c) for at, u in adapter.client.updates[seen:] if (c := chunk_text(u))]
    expect(bool(chunks), f"{name}: no agent_message_chunk")
    check_turn(model, before, workspace, name, "".join(c for _, c in chunks), answer)
    asked = model.main_request_times[before]
    return (chunks[0][0] - began) * 1000, (ended - began) * 1000, (asked - began) * 1000


# --- 2. session start -------------------------------------------------------------------------


async def gateway_start(http: aiohttp.ClientSession, workspace: Workspace) -> float:
    began = time.perf_counter()
    async with http.post(workspace.base, json={"permission_mode": "bypass"}) as a:
        info = await checked(a, 201)
    seconds = time.perf_counter() - began
    expect(info["state"] == "idle" and info["acp_session_id"], f"created {info}")
    async with http.post(f"{workspace.base}/{info['id']}/stop") as a:
        expect((await checked(a, 200))["state"] == "stopped", "the session did not stop")
    return seconds * 1000


async def direct_start(workspace: Workspace, env: dict[str, str]) -> float:
    adapter = DirectAdapter(workspace.target, ADAPTERS["claude-code"], env)
    began = time.perf_counter()
    try:
        await adapter.start(BYPASS_MODE)
        seconds = time.perf_counter() - began
        expect(bool(adapter.session_id) and "claude" in adapter.agent_name, adapter.agent_name)
    finally:
        await adapter.stop()
    return seconds * 1000


# --- the real adapter: parts 1 and 2 ---------------------------------------------------------


async def real_adapter_parts(
    agent: AgentProcess, model: ScriptedModel, workspace: Workspace, rounds: int, warmup: int
) -> dict[str, list[float]]:
    inside = listen_in_container(workspace.target.container)
    model.serve_socket(inside)
    direct_url = f"http://127.0.0.1:{inside.getsockname()[1]}"
    env = {"ANTHROPIC_BASE_URL": direct_url, "ANTHROPIC_API_KEY": KEY}
    figures: dict[str, list[float]] = {
        f"{side}_{what}": []
        for side in ("gw", "direct")
        for what in ("first", "end", "ask", "start")
    }
    async with aiohttp.ClientSession(agent.url, headers=agent.auth()) as http:
        async with http.post(workspace.base, json={"permission_mode": "bypass"}) as a:
            session = (await checked(a, 201))["id"]
        viewer = Viewer(await http.ws_connect(f"{workspace.base}/{session}/ws?after=0"))
        started = await viewer.until("started")
        capabilities = started["initialize"]["clientCapabilities"]
        direct = DirectAdapter(workspace.target, ADAPTERS["claude-code"], env)
        await direct.start(BYPASS_MODE)
        try:
            for n in range(warmup + rounds):
                sides = ("gw", "direct") if n % 2 == 0 else ("direct", "gw")
                for side in sides:
                    name = f"{side}-{n}"
                    if side == "gw":
                        sample = await gateway_turn(http, model, workspace, session, viewer, name)
                    else:
                        sample = await direct_turn(direct, model, workspace, name)
                    if n >= warmup:
                        figures[f"{side}_first"].append(sample[0])
                        figures[f"{side}_end"].append(sample[1])
                        figures[f"{side}_ask"].append(sample[2])
                print(f"  turn round {n + 1}{' (warm-up)' if n < warmup else ''} done")
        finally:
            await direct.stop()
        async with http.post(f"{workspace.base}/{session}/stop") as a:
            await checked(a, 200)
        await viewer.ws.close()
        expect(capabilities["terminal"] is True and capabilities["fs"]["readTextFile"], "caps")
        for n in range(rounds):
            for side in ("gw", "direct") if n % 2 == 0 else ("direct", "gw"):
                if side == "gw":
                    figures["gw_start"].append(await gateway_start(http, workspace))
                else:
                    figures["direct_start"].append(await direct_start(workspace, env))
            print(f"  start round {n + 1} done")
    # Both sides' model requests carried the owner's key: the proxy injected it for the gateway.
    others = {str(key)[:12] for key in model.seen_keys if key != KEY}
    expect(not others, f"model requests without the owner's key: {others}")
    return figures


# --- 3. many viewers ---------------------------------------------------------------------------


def stand_in_tools(folder: Path) -> Path:
    """A container tools folder whose claude-code adapter is the stand-in ACP agent."""
    node = folder / REQUIRED_FILE
    node.parent.mkdir(parents=True)
    try:
        os.link(CHECKOUT_CONTAINER_TOOLS / REQUIRED_FILE, node)
    except OSError:  # another file system
        shutil.copy2(CHECKOUT_CONTAINER_TOOLS / REQUIRED_FILE, node)
    relative = Path(ADAPTERS["claude-code"][1]).relative_to(TOOLS_TARGET)
    entry = folder / relative
    entry.parent.mkdir(parents=True)
    shutil.copy(STAND_IN, entry)
    (entry.parent.parent / "package.json").write_text('{"type": "module"}\n')
    return folder


async def watch(viewer: Viewer, updates: int) -> list[float]:
    """Latencies (ms) of the updates `updates N` makes, in order, up to turn_ended."""
    latencies, expected = [], 0
    while True:
        _, frame = await viewer.next()
        if frame["type"] == "update":
            received = time.time() * 1000
            word, index, _, sent = chunk_text(frame["update"]).split(" ")
            expect(word == "update" and int(index) == expected, f"update {index} for {expected}")
            latencies.append(received - float(sent))
            expected += 1
        elif frame["type"] == "turn_ended":
            expect(expected == updates, f"a viewer got {expected} of {updates} updates")
            return latencies


@dataclass
class FanOut:
    latencies: list[float]  # ms, every (viewer, update)
    memory: list[int]  # the agent's RSS before / with the viewers / after the updates
    cpu_seconds: tuple[float, float]  # the node agent's, this process's (the viewers')
    wall_seconds: float  # prompt -> the last viewer's turn_ended


async def fan_out(
    agent: AgentProcess, workspace: Workspace, viewers: int, updates: int, every_ms: float
) -> FanOut:
    assert agent.process is not None
    process = psutil.Process(agent.process.pid)
    rss: Callable[[], int] = lambda: process.memory_info().rss  # noqa: E731
    async with aiohttp.ClientSession(agent.url, headers=agent.auth()) as http:
        async with http.post(workspace.base, json={"permission_mode": "ask"}) as a:
            session = (await checked(a, 201))["id"]
        memory = [rss()]
        url = f"{workspace.base}/{session}/ws?after=0"
        watchers = [Viewer(await http.ws_connect(url)) for _ in range(viewers)]
        for viewer in watchers:
            started = await viewer.until("started")
            expect(started["agent_info"]["name"] == "stand-in", f"not the stand-in: {started}")
        memory.append(rss())
        tasks = [asyncio.create_task(watch(viewer, updates)) for viewer in watchers]
        prompt = f"updates {updates} {every_ms:g}"
        cpu, own, began = sum(process.cpu_times()[:2]), time.process_time(), time.monotonic()
        async with http.post(f"{workspace.base}/{session}/prompt", json={"text": prompt}) as a:
            await checked(a, 202)
        latencies = [ms for found in await asyncio.gather(*tasks) for ms in found]
        wall = time.monotonic() - began
        used = (sum(process.cpu_times()[:2]) - cpu, time.process_time() - own)
        memory.append(rss())
        async with http.post(f"{workspace.base}/{session}/stop") as a:
            await checked(a, 200)
        for viewer in watchers:
            await viewer.ws.close()
    return FanOut(latencies, memory, used, wall)


# --- figures -------------------------------------------------------------------------------------


def p99(samples: list[float]) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def line(label: str, samples: list[float], unit: str = "ms") -> float:
    p50 = statistics.median(samples)
    print(
        f"  {label:<38} p50 {p50:8.1f} {unit}   p99 {p99(samples):8.1f} {unit}   n={len(samples)}"
    )
    return p50


def verdict(ok: bool) -> str:
    return "within" if ok else "OVER"


def report_adapter(figures: dict[str, list[float]]) -> None:
    print("1. three-step turn (Read, Write, answer)")
    gw_first, direct_first = (
        line("gateway: prompt -> first chunk", figures["gw_first"]),
        line("direct:  prompt -> first chunk", figures["direct_first"]),
    )
    line("gateway: prompt -> first model request", figures["gw_ask"])
    line("direct:  prompt -> first model request", figures["direct_ask"])
    gw_end = line("gateway: prompt -> turn_ended", figures["gw_end"])
    direct_end = line("direct:  prompt -> end of turn", figures["direct_end"])
    added, ratio = gw_first - direct_first, gw_end / direct_end
    print(
        f"  first chunk +{added:.1f} ms ({verdict(added <= TARGET_FIRST_CHUNK_MS)} +"
        f"{TARGET_FIRST_CHUNK_MS:.0f} ms); end of turn {ratio:.2f}x "
        f"({verdict(ratio <= TARGET_END_RATIO)} {TARGET_END_RATIO}x)"
    )
    print("2. session start")
    gw_start = line("gateway: create -> 201", figures["gw_start"])
    direct_start = line("direct:  initialize + new + set_mode", figures["direct_start"])
    ratio = gw_start / direct_start
    print(f"  ratio of p50s {ratio:.2f}x ({verdict(ratio <= TARGET_START_RATIO)} 1.2x)")


def report_viewers(found: FanOut, args: argparse.Namespace) -> None:
    print(
        f"3. {args.viewers} viewers x {args.updates} updates {args.every_ms:g} ms apart (stand-in)"
    )
    line("update -> viewer", found.latencies)
    tail = p99(found.latencies)
    print(f"  max {max(found.latencies):.1f} ms; p99 {verdict(tail <= TARGET_P99_MS)} 50 ms")
    (agent_cpu, own_cpu), wall = found.cpu_seconds, found.wall_seconds
    print(f"  CPU: node agent {agent_cpu:.2f} s, viewers (this process) {own_cpu:.2f} s")
    print(f"  prompt -> every viewer's turn_ended {wall:.2f} s")
    before, viewing, after = (m / 2**20 for m in found.memory)
    print(
        f"  node agent RSS: {before:.1f} MiB before, {viewing:.1f} MiB with the viewers, "
        f"{after:.1f} MiB after the updates (+{after - before:.1f} MiB)"
    )


# --- the run -----------------------------------------------------------------------------------


def run(args: argparse.Namespace, work: Path, node_ids: list[str]) -> None:
    repo = make_repo(work, "repo", files={"notes.txt": f"the secret word is {SECRET_WORD}\n"})
    if args.only in (None, "adapter"):
        run_adapter(args, work, node_ids[0], repo)
    if args.only in (None, "viewers"):
        run_viewers(args, work, node_ids[1], repo)


def run_adapter(args: argparse.Namespace, work: Path, node_id: str, repo: Path) -> None:
    warmup = 0 if args.smoke else 1
    with ScriptedModel(keys={KEY}) as model, ControlPlaneDouble(node_id=node_id) as cp:
        cp.agent_credential = AgentCredential(kind="api_key", secret=KEY)
        env = {
            "SAM_BASE_IMAGE": BASE_IMAGE,
            "SAM_MODEL_BASE_URL": model.url,
            "SAM_LOG_LEVEL": "INFO",
        }
        agent = start_agent(cp, work / "agent-real", extra_env=env)
        try:
            workspace = bring_up(agent, cp, repo)
            figures = asyncio.run(real_adapter_parts(agent, model, workspace, args.rounds, warmup))
            delete(agent, workspace)
        finally:
            agent.stop()
    report_adapter(figures)


def run_viewers(args: argparse.Namespace, work: Path, node_id: str, repo: Path) -> None:
    tools = stand_in_tools(work / "stand-in-tools")
    with ControlPlaneDouble(node_id=node_id) as cp:
        env = {
            "SAM_BASE_IMAGE": BASE_IMAGE,
            "SAM_CONTAINER_TOOLS": str(tools),
            "SAM_LOG_LEVEL": "INFO",
        }
        agent = start_agent(cp, work / "agent-stand-in", extra_env=env)
        try:
            workspace = bring_up(agent, cp, repo)
            found = asyncio.run(
                fan_out(agent, workspace, args.viewers, args.updates, args.every_ms)
            )
            delete(agent, workspace)
        finally:
            agent.stop()
    report_viewers(found, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--viewers", type=int, default=DEFAULT_VIEWERS)
    parser.add_argument("--updates", type=int, default=DEFAULT_UPDATES)
    parser.add_argument("--every-ms", type=float, default=DEFAULT_EVERY_MS)
    parser.add_argument("--only", choices=("adapter", "viewers"), help="parts 1-2, or 3")
    parser.add_argument("--smoke", action="store_true", help="one round of each part, no figures")
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.viewers, args.updates = 1, 10, 200
    if not installed(CHECKOUT_CONTAINER_TOOLS):
        sys.exit("bench_agent_session: tools/container is not installed: run scripts/setup")
    image = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True)
    if image.returncode != 0:
        sys.exit(f"bench_agent_session: {BASE_IMAGE} is missing: run scripts/build-image")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the cleanup below runs too
    run_id = uuid.uuid4().hex[:8]
    node_ids = [f"bench-as-{run_id}", f"bench-as-fan-{run_id}"]
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as folder:
        try:
            run(args, Path(folder), node_ids)
        except (BenchFailure, AdapterFailed) as exc:
            sys.exit(f"bench_agent_session: FAILED: {exc}")
        finally:
            remove_leftovers(node_ids, volume_name(Path(folder) / "stand-in-tools"))


if __name__ == "__main__":
    main()
