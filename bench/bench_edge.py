"""`GET /health` through the local edge vs a bare uvicorn + Starlette endpoint.

Both servers run as separate processes with the same uvicorn settings and are loaded by
`wrk` (64 connections, 10 s each by default) in the same run; the figure that matters is
the ratio. Needs `wrk` (Debian package `wrk`): `scripts/bench` installs it.

    .venv/bin/python bench/bench_edge.py [--seconds 10] [--connections 64]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(url: str, host: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers={"host": host}).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise TimeoutError(url)


def run_wrk(url: str, host: str, seconds: int, connections: int) -> tuple[float, float]:
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-H",
            f"Host: {host}",
            url,
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    return rps, p99_ms


def serve(command: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: run scripts/bench, or apt-get install wrk")

    results = {}
    with tempfile.TemporaryDirectory() as data_dir:
        base_port, edge_port = free_port(), free_port()
        servers = {
            "baseline (uvicorn + Starlette)": (
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "bench.baseline_app:app",
                    "--port",
                    str(base_port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ],
                f"http://127.0.0.1:{base_port}/health",
                f"127.0.0.1:{base_port}",
            ),
            "local edge (sam dev)": (
                [
                    sys.executable,
                    "-m",
                    "devtools.cli",
                    "dev",
                    "--port",
                    str(edge_port),
                    "--data-dir",
                    data_dir,
                    "--log-level",
                    "warning",
                ],
                f"http://127.0.0.1:{edge_port}/health",
                f"api.localhost:{edge_port}",
            ),
        }
        for name, (command, url, host) in servers.items():
            process = serve(command)
            try:
                wait_for(url, host)
                run_wrk(url, host, 2, args.connections)  # warm up
                results[name] = run_wrk(url, host, args.seconds, args.connections)
            finally:
                process.terminate()
                process.wait()

    (base_rps, base_p99), (edge_rps, edge_p99) = results.values()
    for name, (rps, p99) in results.items():
        print(f"{name:32} {rps:10.0f} req/s   p99 {p99:7.2f} ms")
    ratio, p99_ratio = edge_rps / base_rps, edge_p99 / base_p99
    print(f"{'edge / baseline':32} {ratio:10.2f}x req/s   p99 {p99_ratio:5.2f}x  (target >= 0.7x)")


if __name__ == "__main__":
    main()
