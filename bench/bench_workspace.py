"""Workspace bring-up: a bare `devcontainer up` vs the agent's `POST /workspaces` -> ready.

    .venv/bin/python bench/bench_workspace.py [--rounds 7] [--smoke]

Side by side in one run, on the cached base image (scripts/build-image), interleaved
round by round (the order alternates, so neither side always runs on a warmer engine):

- bare: the pinned devcontainer CLI's `up` on a fresh clone of a small repository, with
  the default config and the flags the agent passes; timed from spawn to exit
- agent: `POST /workspaces` on a real agent process (docker backend) reporting to the
  control-plane double; timed until the double receives the `ready` callback. This
  includes what the agent does around the CLI: clone, config, ownership probe, callbacks

Prints the p50 of each and their ratio (target <= 1.3x); never fails on time, but fails
on any answer that is not a success (a refused request, a failed `up`, a provisioning
failure). Every container carries this run's node label and is removed by it at the end,
even on failure. `--smoke` is one round: that it runs, its figures mean nothing.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.process import stderr_tail  # noqa: E402
from agent.workspaces.containers import LABEL_NODE, find_devcontainer_cli, parse_up_output  # noqa: E402
from bench.agent_workspace import BenchError, provision  # noqa: E402
from tests.fixtures.repos import git, make_repo  # noqa: E402
from tests.support.agent import AgentProcess, start_agent  # noqa: E402
from tests.support.control_plane import ControlPlaneDouble  # noqa: E402
from tests.support.docker_objects import remove_labelled  # noqa: E402

BASE_IMAGE = "sam-workspace-base:bookworm"
DEFAULT_ROUNDS = 7
TARGET_RATIO = 1.3
BARE_ROUND_LABEL = "sam.bench.round"
UP_TIMEOUT_SECONDS = 120.0
REPO_FILES = {"README.md": "# small\n", "src/app.py": "print('hello')\n"}
# What the agent writes when a repository has no devcontainer.json (agent/workspaces/backends.py).
DEFAULT_CONFIG = {"image": BASE_IMAGE, "runArgs": ["--network", "host"]}


def bare_up(cli: str, checkout: Path, override: Path, labels: dict[str, str]) -> float:
    """`devcontainer up` with the agent's flags; the seconds it took."""
    argv = [cli, "up", "--workspace-folder", str(checkout)]
    for name, value in labels.items():
        argv += ["--id-label", f"{name}={value}"]
    argv += ["--override-config", str(override)]
    argv += ["--update-remote-user-uid-default", "off", "--log-format", "text"]
    began = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=UP_TIMEOUT_SECONDS)
    seconds = time.monotonic() - began
    result = parse_up_output(done.stdout)
    if done.returncode != 0 or result is None or not result.succeeded:
        detail = stderr_tail(done.stderr)
        raise BenchError(f"bare devcontainer up failed ({done.returncode}):\n{detail}")
    return seconds


def agent_delete(agent: AgentProcess, ws: str) -> None:
    with agent.client() as client:
        response = client.delete(f"/workspaces/{ws}")
    if response.status_code != 200:
        raise BenchError(
            f"DELETE /workspaces/{ws} answered {response.status_code}: {response.text}"
        )


def remove_round_containers(labels: dict[str, str]) -> int:
    """Remove every container that carries all of `labels` (a bare round's); how many."""
    filters = [f"--filter=label={name}={value}" for name, value in labels.items()]
    listed = subprocess.run(["docker", "ps", "-aq", *filters], capture_output=True, text=True)
    ids = listed.stdout.split()
    if ids:
        subprocess.run(["docker", "rm", "-f", "-v", *ids], capture_output=True)
    return len(ids)


def summary(samples: list[float]) -> str:
    p50 = statistics.median(samples)
    return f"p50 {p50:6.2f} s   min {min(samples):6.2f} s   max {max(samples):6.2f} s"


def run(rounds: int, work: Path, node_id: str) -> tuple[list[float], list[float]]:
    cli = find_devcontainer_cli()
    repo = make_repo(work, "small", files=REPO_FILES)
    override = work / "default-devcontainer.json"
    override.write_text(json.dumps({"name": "bench", **DEFAULT_CONFIG}, indent=2) + "\n")
    bare: list[float] = []
    agent_times: list[float] = []
    with ControlPlaneDouble(node_id=node_id) as control_plane:
        agent = start_agent(control_plane, work / "agent-state", backend="docker")
        try:
            for n in range(rounds):
                checkout = work / f"bare-{n}" / "small"
                git(work, "clone", "--quiet", "--", str(repo), str(checkout))
                labels = {LABEL_NODE: node_id, BARE_ROUND_LABEL: str(n)}
                for side in ("bare", "agent") if n % 2 == 0 else ("agent", "bare"):
                    if side == "bare":
                        bare.append(bare_up(cli, checkout, override, labels))
                    else:
                        agent_times.append(provision(agent, control_plane, f"ws-{n}", repo))
                # Each round starts from the same engine: no containers of earlier rounds.
                remove_round_containers(labels)
                agent_delete(agent, f"ws-{n}")
                print(f"  round {n + 1}: bare {bare[-1]:.2f} s, agent {agent_times[-1]:.2f} s")
        finally:
            agent.stop()
    return bare, agent_times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--smoke", action="store_true", help="one round, no figures")
    args = parser.parse_args()
    if args.smoke:
        args.rounds = 1
    image = subprocess.run(["docker", "image", "inspect", BASE_IMAGE], capture_output=True)
    if image.returncode != 0:
        sys.exit(f"bench_workspace: {BASE_IMAGE} is missing: run scripts/build-image")
    # A SIGTERM runs the cleanup below too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    node_id = f"bench-ws-{uuid.uuid4().hex[:8]}"
    print(f"workspace bring-up on {BASE_IMAGE}, {args.rounds} interleaved rounds")
    try:
        with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as folder:
            bare, agent_times = run(args.rounds, Path(folder), node_id)
    finally:
        left = remove_labelled(f"{LABEL_NODE}={node_id}")  # containers and their networks
        if left:
            print(f"  removed {len(left)} object(s) left behind by label {LABEL_NODE}={node_id}")
    ratio = statistics.median(agent_times) / statistics.median(bare)
    verdict = "within" if ratio <= TARGET_RATIO else "OVER"
    print(f"bare devcontainer up    {summary(bare)}")
    print(f"agent POST -> ready     {summary(agent_times)}")
    print(f"ratio of p50s {ratio:.2f}x ({verdict} the {TARGET_RATIO}x target)")


if __name__ == "__main__":
    main()
