"""Run the real local edge (`sam dev`) as a separate process, as a user would."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from devtools.cli import DEV_SECRETS_FILE

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Edge:
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def domain(self) -> str:
        return f"localhost:{self.port}"

    def client(
        self,
        host: str = "api",
        headers: dict[str, str] | None = None,
        timeout: float = 10.0,
        **kwargs: Any,
    ) -> httpx.Client:
        """A client that reaches `{host}.localhost:PORT` on 127.0.0.1."""
        return httpx.Client(
            base_url=f"http://127.0.0.1:{self.port}",
            headers={"host": self.host(host), **(headers or {})},
            timeout=timeout,
            **kwargs,
        )

    def host(self, label: str) -> str:
        return f"{label}.{self.domain}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def assert_docker_backend(self, node_id: str) -> None:
        """The local node launcher started `node_id`'s agent on the Docker backend (its
        `local_node.started` line), not on the unisolated host backend."""
        started = re.findall(rf"local_node\.started node_id={re.escape(node_id)} .*", self.log())
        assert started, f"no local_node.started line for {node_id} in the edge's log"
        assert all(" backend=docker " in line for line in started), started


def _wait_until_up(edge: Edge, healthy: bool) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if edge.process.poll() is not None:
            raise RuntimeError(f"sam dev exited with {edge.process.returncode}:\n{edge.log()}")
        try:
            with edge.client() as client:
                if client.get("/health").status_code == 200 or not healthy:
                    return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise TimeoutError(f"sam dev did not answer /health in {START_TIMEOUT_SECONDS}s:\n{edge.log()}")


def stop(edge: Edge) -> int:
    """Ctrl-C, as a user stops it; returns the exit code."""
    if edge.process.poll() is None:
        edge.process.send_signal(signal.SIGINT)
        try:
            edge.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            edge.process.kill()
            edge.process.wait()
    return edge.process.returncode


@contextmanager
def running_edge(
    data_dir: Path,
    config: Path | None = None,
    port: int | None = None,
    extra_env: dict[str, str] | None = None,
    healthy: bool = True,
    vars: dict[str, str] | None = None,
    host: str = "127.0.0.1",
    trust_cas: list[Path] | None = None,
    log_level: str = "info",
) -> Iterator[Edge]:
    """`sam dev` on a free port of `host`; waits for /health (for any answer if not `healthy`).

    `extra_env` is the process environment; `vars` are worker vars (`env.NAME`), passed
    as `sam dev --var NAME=VALUE` over wrangler.toml and sam dev's own; `trust_cas` are
    CAs the edge trusts for `*.localhost` agents besides its own (`sam dev --trust-ca`),
    e.g. the loopback Cloudflare's Origin CA for nodes booted from a cloud-init.
    """
    port = port or free_port()
    log_path = data_dir.parent / f"{data_dir.name}-edge-{port}.log"
    command = [
        sys.executable,
        "-m",
        "devtools.cli",
        "dev",
        "--port",
        str(port),
        "--host",
        host,
        "--log-level",
        log_level,
        "--data-dir",
        str(data_dir),
        "--config",
        str(config or ROOT / "wrangler.toml"),
        *(f"--var={name}={value}" for name, value in (vars or {}).items()),
        *(f"--trust-ca={path}" for path in trust_cas or ()),
    ]
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "200", **(extra_env or {})},
        )
    edge = Edge(port, data_dir, process, log_path)
    try:
        _wait_until_up(edge, healthy)
        yield edge
    finally:
        stop(edge)


def crashed_and_restarted(
    edge: Edge, edges: ExitStack, variables: dict[str, str], while_down: Callable[[], None]
) -> Edge:
    """kill -9 `edge`, run `while_down` on its files, start it again on the same port and data
    (its signing keys and alarms with it), held open by `edges`."""
    edge.process.kill()
    edge.process.wait()
    while_down()
    return edges.enter_context(running_edge(edge.data_dir, port=edge.port, vars=variables))


def with_secrets(data_dir: Path, secrets: dict[str, str]) -> Path:
    """`data_dir` with `secrets` in `sam dev`'s dev-secrets.json (the local `wrangler secret
    put`), so that a secret setting reaches the edge without entering its argv."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / DEV_SECRETS_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as file:
        json.dump(secrets, file)
    return data_dir


def signed_in(edge: Edge, login: str, timeout_seconds: float = 30.0) -> httpx.Client:
    """An app-host client signed in as `login` through the dev sign-in, as the SPA is."""
    client = edge.client("app")
    client.timeout = httpx.Timeout(timeout_seconds)
    client.headers["origin"] = f"http://{edge.host('app')}"
    reply = client.post("/api/auth/dev-login", json={"login": login})
    assert reply.status_code == 200, reply.text
    return client
