"""Control-plane benchmark: workspace bring-up, terminals through ws-{id}, GET /api/workspaces.

    .venv/bin/python bench/bench_control_plane.py [--rounds 7] [--keystrokes 400]
        [--bytes 20000000] [--terminal-rounds 4] [--seconds 10] [--connections 64]
        [--workspaces 50] [--users 64] [--tokens-per-user 2] [--parts 1,2,3]

Every figure is a ratio to a baseline measured in the same run; nothing asserts on time.

1. Workspace create → first shell byte through the proxy, on a warm local node with the
   cached base image: POST /api/workspaces, poll GET /api/workspaces/{id} every 25 ms
   until `running`, POST /api/terminal/token, open the terminal WebSocket through
   ws-{id}.localhost:PORT, `create`, first output byte. Then DELETE (the node goes warm
   again for the next round). Baseline, interleaved round by round: `git clone` of the
   same repository + a bare `devcontainer up` with the config the agent uses + `docker
   exec -it` of a shell on a PTY, to its first output byte. Target p50 ratio <= 1.5x.
2. Terminal echo round trip (one keystroke to its echo) and output throughput (`head -c N
   /dev/zero | tr '\\0' x`), through ws-{id} (edge proxy) vs straight to the agent's
   port, same workspace and shell, alternating rounds. Targets: echo p50 <= 1.5x,
   throughput >= 0.7x.
3. Authenticated `GET /api/workspaces` spread over many callers: `--users` users with
   `--tokens-per-user` personal API tokens each, every user holding `--workspaces` rows
   (inserted straight into the edge's D1 file: creating 50 real devcontainers would
   measure Docker, not the listing); wrk at 64 connections takes the next token for each
   request (bench/wrk.py), and any failed request fails the run. Baseline: the bare
   uvicorn + Starlette endpoint serialising the same JSON per request (bench/baseline_app.py).
   Requests/s, p99 and the server's CPU time per request. Targets: >= 0.25x req/s, p99 <= 4x.

Parts 1 and 2 need a Docker Engine and the base image (scripts/docker-engine,
scripts/build-image); part 3 needs wrk. The edges run with --log-level warning, as in
bench_edge.py. Every container this run makes is removed at the end, even on failure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pty
import secrets
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.workspaces.containers import find_devcontainer_cli, parse_up_output  # noqa: E402
from bench import baseline_app, wrk  # noqa: E402
from bench.baseline_server import baseline_command, serve, wait_until_healthy  # noqa: E402
from devtools.local_nodes import agent_hostname  # noqa: E402
from tests.fixtures.repos import git, make_repo  # noqa: E402
from tests.support.agent_tls import edge_ca, trusting  # noqa: E402
from tests.support.edge import Edge, free_port, running_edge  # noqa: E402
from tests.support.terminal_client import decode_output, encode_input  # noqa: E402
from worker.api.ratelimit import LIMITS  # noqa: E402

BASE_IMAGE = "sam-workspace-base:bookworm"
# What the agent writes when a repository has no devcontainer.json (agent/workspaces/backends.py).
DEFAULT_CONFIG = {"image": BASE_IMAGE, "runArgs": ["--network", "host"]}
REPO_FILES = {"README.md": "# small\n", "src/app.py": "print('hello')\n"}
BARE_LABEL = "sam.bench.control-plane"
READY_TIMEOUT_SECONDS = 120.0
WARM_UP_SECONDS = 2
POLL_SECONDS = 0.025
STEP_TIMEOUT_SECONDS = 60.0
MARKER_COMMAND = b"echo DONE$((40+2))\r"
MARKER = b"DONE42"
LINE_CLEAR_EVERY = 40
TARGETS = {"bring-up": 1.5, "echo": 1.5, "throughput": 0.7, "listing": 0.25, "listing p99": 4.0}


def summary(samples: list[float], unit: str = "s", scale: float = 1.0) -> str:
    p50 = statistics.median(samples) * scale
    return (
        f"p50 {p50:8.2f} {unit}   min {min(samples) * scale:8.2f} {unit}   "
        f"max {max(samples) * scale:8.2f} {unit}"
    )


def verdict(ratio: float, target: float, higher_is_better: bool = False) -> str:
    ok = ratio >= target if higher_is_better else ratio <= target
    return f"{'within' if ok else 'OVER'} the {target}x target"


# --- the local edge ------------------------------------------------------------------------


@dataclass
class User:
    edge: Edge
    session: str

    def client(self) -> httpx.Client:
        return self.edge.client(
            "app",
            headers={
                "cookie": f"sam_session={self.session}",
                "origin": f"http://{self.edge.host('app')}",
            },
            timeout=60.0,
        )


def sign_in(edge: Edge, login: str) -> User:
    with edge.client("app", headers={"origin": f"http://{edge.host('app')}"}) as client:
        answer = client.post("/api/auth/dev-login", json={"login": login})
    answer.raise_for_status()
    return User(edge, answer.cookies["sam_session"])


def wait_running(client: httpx.Client, workspace_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        shown = client.get(f"/api/workspaces/{workspace_id}").json()
        if shown["status"] == "running":
            return shown
        if shown["status"] == "error":
            raise RuntimeError(f"workspace {workspace_id} failed: {shown['error_message']}")
        time.sleep(POLL_SECONDS)
    raise TimeoutError(f"workspace {workspace_id} did not run in {READY_TIMEOUT_SECONDS}s")


def remove_containers(label: str, value: str) -> int:
    listed = subprocess.run(
        ["docker", "ps", "-aq", "--filter", f"label={label}={value}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    if listed:
        subprocess.run(["docker", "rm", "-f", "-v", *listed], capture_output=True)
    return len(listed)


# --- part 1: workspace create → first shell byte ---------------------------------------------


async def first_output(edge: Edge, workspace_id: str, token: str, proxied: bool) -> float:
    """Open the terminal, `create`; the moment (perf_counter) of the first output byte."""
    url, headers = terminal_target(edge, workspace_id, token, proxied, agent_port=0)
    async with aiohttp.ClientSession() as http, http.ws_connect(url, headers=headers) as ws:
        await ws.send_str(json.dumps({"type": "create", "cols": 120, "rows": 40}))
        async for message in ws:
            if message.type is aiohttp.WSMsgType.BINARY:
                return time.perf_counter()
    raise ConnectionError("the terminal closed before any output")


def terminal_target(
    edge: Edge, workspace_id: str, token: str, proxied: bool, agent_port: int
) -> tuple[str, dict[str, str]]:
    path = f"/workspaces/{workspace_id}/terminal/ws?token={token}"
    if proxied:
        return f"http://127.0.0.1:{edge.port}{path}", {"Host": edge.host(f"ws-{workspace_id}")}
    return f"https://127.0.0.1:{agent_port}{path}", {}


def bare_bring_up(cli: str, repo: Path, work: Path, override: Path, round_id: str) -> float:
    """git clone + devcontainer up + `docker exec -it` to the shell's first output byte."""
    checkout = work / f"bare-{round_id}" / repo.name
    began = time.perf_counter()
    git(work, "clone", "--quiet", "--", str(repo), str(checkout))
    argv = [
        cli,
        "up",
        "--workspace-folder",
        str(checkout),
        "--id-label",
        f"{BARE_LABEL}={round_id}",
        "--override-config",
        str(override),
        "--update-remote-user-uid-default",
        "off",
        "--log-format",
        "text",
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=READY_TIMEOUT_SECONDS)
    result = parse_up_output(done.stdout)
    if done.returncode != 0 or result is None or not result.succeeded:
        raise RuntimeError(f"bare devcontainer up failed: {done.stderr[-2000:]}")
    folder = result.remote_workspace_folder or "/"
    exec_argv = ["docker", "exec", "-it", "-w", folder]
    if result.remote_user:
        exec_argv += ["-u", result.remote_user]
    exec_argv += [result.container_id, "bash"]
    master, slave = pty.openpty()
    shell = subprocess.Popen(exec_argv, stdin=slave, stdout=slave, stderr=slave, close_fds=True)
    os.close(slave)
    try:
        if not os.read(master, 1):
            raise RuntimeError("docker exec printed nothing")
        return time.perf_counter() - began
    finally:
        shell.kill()
        shell.wait()
        os.close(master)


def part_bring_up(
    edge: Edge, user: User, work: Path, rounds: int
) -> tuple[list[float], list[float]]:
    cli = find_devcontainer_cli()
    repo = make_repo(work, "small", files=REPO_FILES)
    override = work / "default-devcontainer.json"
    override.write_text(json.dumps({"name": "bench", **DEFAULT_CONFIG}, indent=2) + "\n")
    sam: list[float] = []
    bare: list[float] = []
    for n in range(rounds):
        for side in ("bare", "sam") if n % 2 == 0 else ("sam", "bare"):
            if side == "bare":
                bare.append(bare_bring_up(cli, repo, work, override, f"{os.getpid()}-{n}"))
                remove_containers(BARE_LABEL, f"{os.getpid()}-{n}")
            else:
                seconds, workspace_id = asyncio.run(timed_bring_up(edge, user, str(repo)))
                sam.append(seconds)
                with user.client() as client:
                    client.delete(f"/api/workspaces/{workspace_id}").raise_for_status()
        print(f"  round {n + 1}: bare {bare[-1]:.2f} s, SAM {sam[-1]:.2f} s", flush=True)
    return sam, bare


async def timed_bring_up(edge: Edge, user: User, repository: str) -> tuple[float, str]:
    began = time.perf_counter()
    with user.client() as client:
        created = client.post(
            "/api/workspaces", json={"repository": repository, "provider": "local"}
        )
        created.raise_for_status()
        workspace_id = created.json()["id"]
        wait_running(client, workspace_id)
        token = client.post("/api/terminal/token", json={"workspace_id": workspace_id})
        token.raise_for_status()
    first = await first_output(edge, workspace_id, token.json()["token"], proxied=True)
    return first - began, workspace_id


# --- part 2: terminal echo and throughput -----------------------------------------------------


class Terminal:
    """One terminal session on one WebSocket, reduced to keystrokes in, bytes out."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.session_id = ""

    async def open(self) -> None:
        await self.ws.send_str(json.dumps({"type": "create", "cols": 120, "rows": 40}))
        async for message in self.ws:
            if message.type is aiohttp.WSMsgType.TEXT:
                frame = json.loads(message.data)
                if frame["type"] != "created":
                    raise RuntimeError(f"create failed: {frame}")
                self.session_id = frame["session"]["session_id"]
                return

    async def send(self, data: bytes) -> None:
        await self.ws.send_bytes(encode_input(self.session_id, data))

    async def output(self) -> bytes:
        while True:
            message = await self.ws.receive()
            if message.type is aiohttp.WSMsgType.BINARY:
                return decode_output(message.data)[2]
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionError(f"the terminal ended: {message.type}")

    async def close(self) -> None:
        await self.ws.send_str(json.dumps({"type": "close", "session_id": self.session_id}))
        await self.ws.close()


async def drain(term: Terminal, quiet_seconds: float = 0.05) -> None:
    while True:
        try:
            await asyncio.wait_for(term.output(), quiet_seconds)
        except TimeoutError:
            return


async def echo_latencies(term: Terminal, keystrokes: int) -> list[float]:
    await drain(term, 0.3)
    samples = []
    for index in range(keystrokes):
        started = time.perf_counter()
        await term.send(b"x")
        try:
            async with asyncio.timeout(STEP_TIMEOUT_SECONDS):
                while b"x" not in await term.output():
                    pass
        except TimeoutError:
            raise RuntimeError(
                "no echo: over the agent's SAM_MAX_FRAMES_PER_SECOND (200) the keystrokes are "
                "refused; use fewer --keystrokes per --terminal-rounds"
            ) from None
        samples.append(time.perf_counter() - started)
        if index % LINE_CLEAR_EVERY == LINE_CLEAR_EVERY - 1:
            await term.send(b"\x15")  # Ctrl-U: the line never wraps
            await drain(term)
    await term.send(b"\x15")
    await drain(term)
    return samples


async def throughput(term: Terminal, total_bytes: int) -> float:
    command = f"head -c {total_bytes} /dev/zero | tr '\\0' x; ".encode() + MARKER_COMMAND
    count, tail = 0, b""
    started = time.perf_counter()
    await term.send(command)
    async with asyncio.timeout(STEP_TIMEOUT_SECONDS):
        while True:
            data = await term.output()
            count += len(data)
            window = tail + data
            if MARKER in window:
                break
            tail = window[-len(MARKER) :]
    elapsed = time.perf_counter() - started
    await drain(term)
    return count / elapsed


async def part_terminal(
    edge: Edge, user: User, workspace: dict[str, Any], agent_port: int, args: argparse.Namespace
) -> dict[str, tuple[list[float], list[float]]]:
    """Echo and output through the edge vs straight to the agent, which serves TLS as
    vm-{node}.localhost: verified against the edge's local CA, as the edge verifies it."""
    workspace_id = workspace["id"]
    direct_tls = {
        "ssl": trusting(edge_ca(edge.data_dir)),
        "server_hostname": agent_hostname(workspace["node_id"]),
    }
    results: dict[str, tuple[list[float], list[float]]] = {
        "proxy": ([], []),
        "direct": ([], []),
    }
    keystrokes = max(1, args.keystrokes // args.terminal_rounds)
    size = max(1, args.bytes // args.terminal_rounds)
    async with aiohttp.ClientSession() as http:
        for n in range(args.terminal_rounds):
            order = ("proxy", "direct") if n % 2 == 0 else ("direct", "proxy")
            for side in order:
                with user.client() as client:
                    token = client.post("/api/terminal/token", json={"workspace_id": workspace_id})
                    token.raise_for_status()
                url, headers = terminal_target(
                    edge, workspace_id, token.json()["token"], side == "proxy", agent_port
                )
                tls = {} if side == "proxy" else direct_tls
                async with http.ws_connect(url, headers=headers, max_msg_size=0, **tls) as ws:
                    term = Terminal(ws)
                    await term.open()
                    echoes, rates = results[side]
                    echoes.extend(await echo_latencies(term, keystrokes))
                    rates.append(await throughput(term, size))
                    await term.close()
    return results


# --- part 3: GET /api/workspaces under wrk --------------------------------------------------


def insert_workspaces(data_dir: Path, user_ids: list[str], count: int) -> None:
    with closing(sqlite3.connect(data_dir / "d1" / "sam.sqlite")) as db:
        db.executemany(
            "INSERT INTO workspaces (id, user_id, name, repository, branch, status, provider) "
            "VALUES (?, ?, ?, ?, 'main', 'stopped', 'local')",
            [
                (
                    "w" + secrets.token_hex(16),
                    user_id,
                    f"bench-{n}",
                    f"https://github.com/example/repo-{n}.git",
                )
                for user_id in user_ids
                for n in range(count)
            ],
        )
        db.commit()


def listing_callers(edge: Edge, args: argparse.Namespace) -> tuple[list[str], Any]:
    """`--users` users, each with `--tokens-per-user` API tokens and `--workspaces` rows:
    the tokens, and one user's listing (what the baseline serves). Every token is checked
    to list exactly its owner's rows before any load."""
    tokens: dict[str, str] = {}  # token → its owner's id
    for n in range(args.users):
        user = sign_in(edge, f"lister-{n}")
        with user.client() as client:
            me = client.get("/api/auth/me").json()
            for _ in range(args.tokens_per_user):
                made = client.post("/api/tokens", json={"name": "bench"})
                made.raise_for_status()
                tokens[made.json()["token"]] = me["id"]
    insert_workspaces(edge.data_dir, sorted(set(tokens.values())), args.workspaces)
    listing = None
    with edge.client("api") as client:
        for token, owner in tokens.items():
            answer = client.get("/api/workspaces", headers={"authorization": f"Bearer {token}"})
            answer.raise_for_status()
            listing = answer.json()
            ids = {shown["id"] for shown in listing["workspaces"]}
            with closing(sqlite3.connect(edge.data_dir / "d1" / "sam.sqlite")) as db:
                owned = {
                    row[0]
                    for row in db.execute("SELECT id FROM workspaces WHERE user_id = ?", (owner,))
                }
            if ids != owned or len(ids) != args.workspaces:
                raise RuntimeError(f"a token of {owner} listed {len(ids)} rows, not its own")
    return list(tokens), listing


def part_listing(work: Path, args: argparse.Namespace) -> dict[str, wrk.Load]:
    results: dict[str, wrk.Load] = {}
    limits = {"SAM_RATE_LIMITS": ",".join(f"{name}=100000/60" for name in LIMITS)}
    with running_edge(work / "edge-listing", vars=limits, log_level="warning") as edge:
        tokens, listing = listing_callers(edge, args)
        listing_file = work / "listing.json"
        listing_file.write_text(json.dumps(listing))
        base_port = free_port()
        baseline = serve(baseline_command(base_port), {baseline_app.LISTING_VAR: str(listing_file)})
        try:
            host = f"127.0.0.1:{base_port}"
            url = f"http://{host}/api/workspaces"
            wait_until_healthy(f"http://{host}/health", host, baseline)
            if httpx.get(url).json() != listing:
                raise RuntimeError("the baseline does not serve the edge's listing")
            results["baseline GET /api/workspaces"] = wrk.run(
                url,
                [{"Host": host}],
                seconds=args.seconds,
                connections=args.connections,
                pid=baseline.pid,
                work=work,
                warm_up_seconds=WARM_UP_SECONDS,
            )
        finally:
            baseline.terminate()
            baseline.wait()
        callers = [
            {"Host": edge.host("api"), "Authorization": f"Bearer {token}"} for token in tokens
        ]
        label = f"edge GET /api/workspaces ({len(tokens)} tokens)"
        results[label] = wrk.run(
            f"http://127.0.0.1:{edge.port}/api/workspaces",
            callers,
            seconds=args.seconds,
            connections=args.connections,
            pid=edge.process.pid,
            work=work,
            warm_up_seconds=WARM_UP_SECONDS,
        )
    return results


# --- the run ----------------------------------------------------------------------------------


def part_workspaces(work: Path, args: argparse.Namespace, parts: set[int]) -> None:
    variables = {
        "SAM_MAX_WORKSPACES_PER_NODE": "64",
        "SAM_WARM_TIMEOUT_SECONDS": "3600",
        "SAM_RATE_LIMITS": ",".join(f"{name}=100000/60" for name in LIMITS),
    }
    node_id = None
    with running_edge(work / "edge", vars=variables) as edge:
        user = sign_in(edge, "bench")
        repo = make_repo(work, "warmup", files=REPO_FILES)
        try:
            # The node: provisioned by the first workspace, which stays for part 2.
            with user.client() as client:
                created = client.post(
                    "/api/workspaces", json={"repository": str(repo), "provider": "local"}
                )
                created.raise_for_status()
                workspace = wait_running(client, created.json()["id"])
                node_id = workspace["node_id"]
                agent_port = client.get(f"/api/nodes/{node_id}").json()["agent_port"]
            if 1 in parts:
                print(f"== 1. workspace create -> first shell byte, warm local node, {BASE_IMAGE}")
                sam, bare = part_bring_up(edge, user, work, args.rounds)
                ratio = statistics.median(sam) / statistics.median(bare)
                print(f"bare clone + up + exec      {summary(bare)}")
                print(f"SAM create -> first byte    {summary(sam)}")
                print(f"ratio of p50s {ratio:.2f}x ({verdict(ratio, TARGETS['bring-up'])})")
                print()
            if 2 in parts:
                print("== 2. terminal through ws-{id} (edge proxy) vs straight to the agent")
                results = asyncio.run(part_terminal(edge, user, workspace, agent_port, args))
                (p_echo, p_rate), (d_echo, d_rate) = results["proxy"], results["direct"]
                print(f"echo   direct  {summary(d_echo, 'ms', 1000)}")
                print(f"echo   proxy   {summary(p_echo, 'ms', 1000)}")
                mib = 1 / (1024 * 1024)
                print(f"output direct  p50 {statistics.median(d_rate) * mib:8.1f} MiB/s")
                print(f"output proxy   p50 {statistics.median(p_rate) * mib:8.1f} MiB/s")
                echo_ratio = statistics.median(p_echo) / statistics.median(d_echo)
                rate_ratio = statistics.median(p_rate) / statistics.median(d_rate)
                print(f"echo p50 ratio {echo_ratio:.2f}x ({verdict(echo_ratio, TARGETS['echo'])})")
                print(
                    f"throughput ratio {rate_ratio:.2f}x "
                    f"({verdict(rate_ratio, TARGETS['throughput'], higher_is_better=True)})"
                )
                print()
        finally:
            with user.client() as client:
                for shown in client.get("/api/workspaces").json()["workspaces"]:
                    client.delete(f"/api/workspaces/{shown['id']}")
                if node_id is not None:
                    client.delete(f"/api/nodes/{node_id}")
    if node_id is not None:
        left = remove_containers("sam.node", node_id)
        if left:
            print(f"  removed {left} container(s) the node left behind (sam.node={node_id})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--keystrokes", type=int, default=400)
    parser.add_argument("--bytes", type=int, default=20_000_000)
    parser.add_argument("--terminal-rounds", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--tokens-per-user", type=int, default=2)
    parser.add_argument("--parts", default="1,2,3")
    parser.add_argument(
        "--smoke", action="store_true", help="each part once, tiny and short: a check, no figures"
    )
    args = parser.parse_args()
    if args.smoke:
        args.rounds, args.keystrokes, args.bytes, args.terminal_rounds = 1, 20, 200_000, 1
        args.seconds, args.connections, args.workspaces = 1, 4, 5
        args.users, args.tokens_per_user = 2, 1
    parts = {int(part) for part in args.parts.split(",")}
    if parts & {1, 2}:
        image = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True)
        if image.returncode != 0:
            sys.exit(f"bench_control_plane: {BASE_IMAGE} is missing: run scripts/build-image")
    if 3 in parts and shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run scripts/bench, or apt-get install wrk")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # cleanup runs on SIGTERM too
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as folder:
        work = Path(folder)
        try:
            if parts & {1, 2}:
                part_workspaces(work, args, parts)
            if 3 in parts:
                print(f"== 3. GET /api/workspaces, {args.connections} connections (wrk)")
                results = part_listing(work, args)
                base, edge = results.values()
                for name, load in results.items():
                    print(
                        f"{name:42} {load.rps:8.0f} req/s   p99 {load.p99_ms:8.2f} ms   "
                        f"CPU {load.cpu_ms_per_request:6.3f} ms/request"
                    )
                rate, p99 = edge.rps / base.rps, edge.p99_ms / base.p99_ms
                print(
                    f"{'edge / baseline':42} {rate:8.2f}x req/s   p99 {p99:6.2f}x   "
                    f"CPU {edge.cpu_ms_per_request / base.cpu_ms_per_request:6.2f}x"
                )
                print(
                    f"req/s {verdict(rate, TARGETS['listing'], higher_is_better=True)}, "
                    f"p99 {verdict(p99, TARGETS['listing p99'])}"
                )
        finally:
            left = subprocess.run(
                ["docker", "ps", "-aq", "--filter", f"label={BARE_LABEL}"],
                capture_output=True,
                text=True,
            ).stdout.split()
            if left:
                subprocess.run(["docker", "rm", "-f", "-v", *left], capture_output=True)


if __name__ == "__main__":
    main()
