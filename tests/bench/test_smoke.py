"""Every benchmark still runs: each one's `--smoke` mode (a few iterations, its figures
unread) must exit 0. The benchmarks start together, so the pass takes about as long as the
slowest of them, not their sum; `scripts/bench` runs them for real.

A benchmark fails its smoke run the way it fails a real one: on any answer that was not a
success (bench/wrk.py for the HTTP load, frame checks for the terminals).
"""

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = (
    "bench_agent_session",
    "bench_cold_start",
    "bench_control_plane",
    "bench_edge",
    "bench_request_cpu",
    "bench_d1",
    "bench_do_rpc",
    "bench_model_proxy",
    "bench_workspace",
    "bench_terminal",
    "bench_browser",
    "bench_project_chat",
    "bench_tasks",
)
SMOKE_TIMEOUT_SECONDS = 240


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    """Every benchmark's smoke run, started at once; each test reads its own."""
    logs = tmp_path_factory.mktemp("bench-smoke")
    runs = {}
    for name in BENCHMARKS:
        log = (logs / f"{name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, str(ROOT / "bench" / f"{name}.py"), "--smoke"],
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        runs[name] = (process, log)
    yield runs
    for process, log in runs.values():
        if process.poll() is None:
            process.terminate()
            process.wait(30)
        log.close()


@pytest.mark.parametrize("name", BENCHMARKS)
def test_the_benchmark_runs(name: str, smoke_runs: dict) -> None:
    process, log = smoke_runs[name]
    status = process.wait(SMOKE_TIMEOUT_SECONDS)
    output = Path(log.name).read_text(errors="replace")
    assert status == 0, f"bench/{name}.py --smoke exited {status}:\n{output[-4000:]}"


def test_every_benchmark_has_a_smoke_run() -> None:
    found = {path.stem for path in (ROOT / "bench").glob("bench_*.py")}
    assert found == set(BENCHMARKS)
