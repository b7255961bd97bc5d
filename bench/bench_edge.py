"""`GET /health` through the local edge vs a bare uvicorn + Starlette endpoint.

Both servers run as separate processes with the same uvicorn settings and are loaded by
`wrk` (64 connections, 10 s each by default) in the same run; the figure that matters is
the ratio. Any answer that is not a 200 (or a socket error) ends the run (bench/wrk.py).
Needs `wrk` (Debian package `wrk`): `scripts/bench` installs it.

    .venv/bin/python bench/bench_edge.py [--seconds 10] [--connections 64] [--smoke]

`--smoke` loads each server for one second with four connections: it proves the benchmark
still runs (tests/bench/ runs it in the suite); its figures mean nothing.
"""

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import wrk  # noqa: E402
from bench.baseline_server import baseline_command, serve, wait_until_healthy  # noqa: E402
from tests.support.edge import free_port  # noqa: E402

WARM_UP_SECONDS = 2


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--smoke", action="store_true", help="1 s, 4 connections, no figures")
    args = parser.parse_args()
    if args.smoke:
        args.seconds, args.connections = 1, 4

    results = {}
    with tempfile.TemporaryDirectory() as data_dir:
        base_port, edge_port = free_port(), free_port()
        servers = {
            "baseline (uvicorn + Starlette)": (
                baseline_command(base_port),
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
                wait_until_healthy(url, host, process)
                results[name] = wrk.run(
                    url,
                    [{"Host": host}],
                    seconds=args.seconds,
                    connections=args.connections,
                    pid=process.pid,
                    work=Path(data_dir),
                    warm_up_seconds=0 if args.smoke else WARM_UP_SECONDS,
                )
            finally:
                process.terminate()
                process.wait()

    base, edge = results.values()
    for name, load in results.items():
        print(f"{name:32} {load.rps:10.0f} req/s   p99 {load.p99_ms:7.2f} ms")
    ratio, p99_ratio = edge.rps / base.rps, edge.p99_ms / base.p99_ms
    print(f"{'edge / baseline':32} {ratio:10.2f}x req/s   p99 {p99_ratio:5.2f}x  (target >= 0.7x)")


if __name__ == "__main__":
    main()
