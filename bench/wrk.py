"""wrk, the C load generator the HTTP benchmarks use, with every answer checked and the
server process's CPU time per request.

    load = run(url, [{"Host": h, "Authorization": "Bearer a"}, ...], seconds=10,
               connections=64, pid=server.pid, work=Path(tmp), warm_up_seconds=2)
    load.rps, load.p99_ms, load.cpu_ms_per_request

Each request takes the next header set (per wrk thread), so a run over N tokens asks as N
callers would; one header set asks as one caller. Any connect, read, write or timeout error,
any answer that is not 2xx/3xx, or no request at all raises WrkError with wrk's own report:
a figure from failed requests measures the failure, not the server.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

WRK_THREADS = 2
# wrk counts an answer slower than this as a timeout (its default, 2 s, is within reach of
# a loaded shared machine's p99).
WRK_TIMEOUT_SECONDS = 30
RESULT_MARK = "WRK_RESULT "

# Requests are built once per thread in init(); request() only picks the next one.
_SCRIPT = """
local header_sets = {%(header_sets)s}
local prepared = {}
local next_index = 0
function init(args)
  for i, headers in ipairs(header_sets) do
    prepared[i] = wrk.format(nil, nil, headers)
  end
end
function request()
  next_index = next_index %% #prepared + 1
  return prepared[next_index]
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '%(mark)s{"requests": %%d, "duration_us": %%d, "p99_us": %%d, "connect": %%d, ' ..
    '"read": %%d, "write": %%d, "status": %%d, "timeout": %%d}\\n',
    summary.requests, summary.duration, latency:percentile(99), e.connect, e.read,
    e.write, e.status, e.timeout))
end
"""


class WrkError(RuntimeError):
    """wrk is missing, failed, or saw answers that were not successes."""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p99_ms: float
    cpu_seconds: float  # the server process's user + system time during the run

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def cpu_ms_per_request(self) -> float:
        return self.cpu_seconds * 1000 / self.requests


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of process `pid` so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _lua_string(value: str) -> str:
    assert "]==]" not in value and "\n" not in value, value
    return f"[==[{value}]==]"


def script(header_sets: list[dict[str, str]]) -> str:
    tables = ", ".join(
        "{"
        + ", ".join(f"[ {_lua_string(k)} ] = {_lua_string(v)}" for k, v in headers.items())
        + "}"
        for headers in header_sets
    )
    return _SCRIPT % {"header_sets": tables, "mark": RESULT_MARK}


def run(
    url: str,
    header_sets: list[dict[str, str]],
    seconds: float,
    connections: int,
    pid: int,
    work: Path,
    warm_up_seconds: float = 0,
) -> Load:
    """Load `url` for `seconds` from `connections` connections, after `warm_up_seconds` of
    the same load that is not measured; WrkError naming the failures if any request failed."""
    assert header_sets, "at least one header set (with Host)"
    if warm_up_seconds:
        run(url, header_sets, warm_up_seconds, connections, pid, work)
    if shutil.which("wrk") is None:
        raise WrkError("wrk is not installed: scripts/system-packages test installs it")
    lua = work / f"wrk-{os.getpid()}-{abs(hash(url))}.lua"
    lua.write_text(script(header_sets))
    argv = [
        "wrk",
        f"-t{WRK_THREADS}",
        f"-c{connections}",
        f"-d{seconds}s",
        f"--timeout={WRK_TIMEOUT_SECONDS}s",
        "-s",
        str(lua),
        url,
    ]
    cpu_before = process_cpu_seconds(pid)
    done = subprocess.run(argv, capture_output=True, text=True)
    cpu_seconds = process_cpu_seconds(pid) - cpu_before
    report = done.stdout + done.stderr
    if done.returncode != 0:
        raise WrkError(f"wrk exited {done.returncode}:\n{report}")
    results = [
        json.loads(line[len(RESULT_MARK) :])
        for line in done.stdout.splitlines()
        if line.startswith(RESULT_MARK)
    ]
    if not results:
        raise WrkError(f"wrk printed no result:\n{report}")
    result = results[-1]
    failed = {kind: result[kind] for kind in ("connect", "read", "write", "status", "timeout")}
    if any(failed.values()) or result["requests"] == 0:
        raise WrkError(f"{url}: {result['requests']} requests, failures {failed}:\n{report}")
    return Load(
        requests=result["requests"],
        seconds=result["duration_us"] / 1e6,
        p99_ms=result["p99_us"] / 1000,
        cpu_seconds=cpu_seconds,
    )
