"""CPU time per authenticated `GET /api/workspaces`, on both runtimes the Worker runs on.

    .venv/bin/python bench/bench_request_cpu.py [--requests 300] [--users 8]
        [--workspaces 50] [--runtimes twin,pyodide]

twin     the Worker in this process on the CPython twin, called as the local edge calls it
         (`LocalEdge.fetch`, no HTTP server): this process's CPU time per request.
pyodide  the Worker's `wrangler deploy --dry-run` bundle in the real-Pyodide harness
         (tests/pyodide: Node, Pyodide 314, miniflare's D1 and KV): the Node process's CPU
         time per request. That includes the harness's own work (JSON lines over stdio, and
         miniflare's proxies, which make every D1 call, `prepare` and `bind` too, a
         synchronous round trip to workerd), so `GET /health` is measured beside it as the
         floor; the difference is what the request adds.

Requests rotate over `--users` users, each with an API token of its own and `--workspaces`
rows, and every answer is checked (200, and the owner's rows). Nothing asserts on time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pyodide.callers import API, DEVELOPMENT_VARS, sign_in  # noqa: E402
from tests.pyodide.harness import PyodideWorker  # noqa: E402
from tests.support.wrangler import dry_run_bundle  # noqa: E402
from twin.http import Request  # noqa: E402
from twin.server import LocalEdge  # noqa: E402
from twin.wrangler import load  # noqa: E402
from worker.auth.api_tokens import create_token  # noqa: E402
from worker.auth.users import upsert_local_user  # noqa: E402

WARM_UP_REQUESTS = 30
INSERT_WORKSPACE = (
    "INSERT INTO workspaces (id, user_id, name, repository, branch, status, provider) "
    "VALUES (?, ?, ?, ?, 'main', 'stopped', 'local')"
)


def workspace_rows(user_id: str, count: int) -> list[tuple[str, str, str, str]]:
    return [
        ("w" + secrets.token_hex(16), user_id, f"bench-{n}", f"https://github.com/e/r{n}.git")
        for n in range(count)
    ]


def process_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def check(status: int, listed: int | None = None, expected: int | None = None) -> None:
    if status != 200 or listed != expected:
        raise RuntimeError(f"answer {status} with {listed} rows, not 200 with {expected}")


async def measure(
    requests: int, call: Callable[[int, bool], Awaitable[None]], cpu: Callable[[], float]
) -> float:
    """Milliseconds of CPU per call. Warm-up answers are checked whole; measured ones by
    status only, so that parsing them does not count (in-process, it would)."""
    for index in range(WARM_UP_REQUESTS):
        await call(index, True)
    started = cpu()
    for index in range(requests):
        await call(index, False)
    return (cpu() - started) * 1000 / requests


async def on_twin(args: argparse.Namespace, work: Path) -> tuple[float, float]:
    edge = LocalEdge(
        load(ROOT / "wrangler.toml"),
        work / "twin",
        overrides={"SAM_DOMAIN": "localhost:8787", "SAM_ENVIRONMENT": "development"},
    )
    await edge.start()
    try:
        assert edge.runtime is not None
        db = edge.runtime.env.DATABASE
        tokens = []
        for n in range(args.users):
            user = await upsert_local_user(db, f"bench-{n}")
            made = await create_token(db, user.id, "bench")
            assert made is not None
            tokens.append(made[1])
            await db.batch(
                [
                    db.prepare(INSERT_WORKSPACE).bind(*row)
                    for row in workspace_rows(user.id, args.workspaces)
                ]
            )
        host = {"host": "api.localhost:8787"}

        async def health(_: int, whole: bool) -> None:
            answer = await edge.fetch(Request(f"http://{host['host']}/health", headers=host))
            check(answer.status)

        async def listing(index: int, whole: bool) -> None:
            headers = {**host, "authorization": f"Bearer {tokens[index % len(tokens)]}"}
            answer = await edge.fetch(
                Request(f"http://{host['host']}/api/workspaces", headers=headers)
            )
            if whole:
                check(answer.status, len((await answer.json())["workspaces"]), args.workspaces)
            else:
                check(answer.status)

        return (
            await measure(args.requests, health, time.process_time),
            await measure(args.requests, listing, time.process_time),
        )
    finally:
        await edge.stop()


async def on_pyodide(args: argparse.Namespace, work: Path) -> tuple[float, float]:
    worker = PyodideWorker(dry_run_bundle(work / "bundle"), vars=DEVELOPMENT_VARS)
    try:
        members = [sign_in(worker, f"bench-{n}") for n in range(args.users)]
        for member in members:
            for row in workspace_rows(member.id, args.workspaces):
                worker.d1("DATABASE", INSERT_WORKSPACE, *row)
        cpu = lambda: process_cpu_seconds(worker._process.pid)  # noqa: E731

        def checked(status: int, listed: int | None = None, expected: int | None = None) -> None:
            try:
                check(status, listed, expected)
            except RuntimeError as exc:  # the Worker's own log says why
                raise RuntimeError(f"{exc}; the host's log:\n{worker.stderr_tail()}") from None

        async def health(_: int, whole: bool) -> None:
            checked(worker.fetch(f"{API}/health").status)

        async def listing(index: int, whole: bool) -> None:
            answer = worker.fetch(
                f"{API}/api/workspaces", headers=members[index % len(members)].token_headers()
            )
            if whole and answer.status == 200:
                checked(answer.status, len(answer.json()["workspaces"]), args.workspaces)
            else:
                checked(answer.status)

        return await measure(args.requests, health, cpu), await measure(args.requests, listing, cpu)
    finally:
        worker.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--users", type=int, default=8)
    parser.add_argument("--workspaces", type=int, default=50)
    parser.add_argument("--runtimes", default="twin,pyodide")
    parser.add_argument(
        "--smoke", action="store_true", help="20 requests, 2 users, 5 rows: a check, no figures"
    )
    args = parser.parse_args()
    if args.smoke:
        args.requests, args.users, args.workspaces = 20, 2, 5
    runs = {"twin": on_twin, "pyodide": on_pyodide}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as folder:
        for name in args.runtimes.split(","):
            health, listing = asyncio.run(runs[name](args, Path(folder)))
            print(
                f"{name:8} CPU per request: GET /health {health:7.3f} ms   "
                f"GET /api/workspaces ({args.workspaces} rows, {args.users} tokens) "
                f"{listing:7.3f} ms   difference {listing - health:7.3f} ms"
            )


if __name__ == "__main__":
    main()
