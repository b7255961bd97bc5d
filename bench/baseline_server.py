"""The HTTP benchmarks' servers as processes: the bare uvicorn + Starlette baseline
(bench/baseline_app.py) and a check that a server answers its health route.

    process = serve(baseline_command(port))
    wait_until_healthy(f"http://127.0.0.1:{port}/health", f"127.0.0.1:{port}", process)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
START_TIMEOUT_SECONDS = 30.0


def baseline_command(port: int) -> list[str]:
    """uvicorn serving bench/baseline_app.py with the edge's settings (warning logs, no
    access log), so that the two differ only in what they run."""
    return [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.baseline_app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]


def serve(command: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """`command` from the repository root, quiet, with the repository importable."""
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def wait_until_healthy(url: str, host: str, process: subprocess.Popen[bytes]) -> None:
    """Until `url` (with Host `host`) answers 200; RuntimeError if the server exits or
    answers anything else, TimeoutError after START_TIMEOUT_SECONDS."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: the server exited with {process.returncode}")
        try:
            answer = httpx.get(url, headers={"host": host})
        except httpx.TransportError:
            time.sleep(0.1)
            continue
        if answer.status_code != 200:
            raise RuntimeError(f"{url} answered {answer.status_code}: {answer.text}")
        return
    raise TimeoutError(f"{url} did not answer within {START_TIMEOUT_SECONDS:.0f} s")
