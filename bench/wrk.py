"""wrk, the C load generator the HTTP benchmarks use, and the checks on what it saw.

    rps, p99_ms = run_wrk("http://127.0.0.1:8787/health", {"Host": "api.localhost"}, 10, 64)

A run with any non-2xx/3xx answer, any socket error or no request at all raises WrkError
with wrk's own report: a benchmark that measured error answers has measured nothing.
"""

import re
import shutil
import subprocess

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


class WrkError(RuntimeError):
    """wrk is missing, failed, or saw answers that were not successes."""


def run_wrk(
    url: str, headers: dict[str, str], seconds: int, connections: int
) -> tuple[float, float]:
    """Requests per second and the p99 latency in ms of `connections` connections for
    `seconds` seconds."""
    if shutil.which("wrk") is None:
        raise WrkError("wrk is not installed: scripts/system-packages test installs it")
    argv = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    done = subprocess.run([*argv, url], capture_output=True, text=True)
    report = done.stdout + done.stderr
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}:\n{report}")
    failed = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", report)
    if failed:
        raise WrkError(f"{failed.group(1)} answers were not successes:\n{report}")
    errors = re.search(r"Socket errors:[^\n]*", report)
    if errors:
        raise WrkError(f"{errors.group(0)}:\n{report}")
    requests = re.search(r"(\d+) requests in", report)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", report)
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)\b", report)
    if not (requests and rps and p99) or int(requests.group(1)) == 0:
        raise WrkError(f"wrk completed no request:\n{report}")
    return float(rps.group(1)), float(p99.group(1)) * UNIT_MS[p99.group(2)]
