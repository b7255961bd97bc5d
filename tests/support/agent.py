"""Run the real agent (`python -m agent`) as a subprocess, as systemd would on a VM.

`start_agent(control_plane, state_dir)` starts it on a free loopback port with SAM_* env
pointing at a `ControlPlaneDouble`, writes the double's first callback token into the
token file, and waits for /health. `AgentProcess.kill()` is kill -9; `restart()` starts it
again with the same env, port and state dir; `stop()` is SIGTERM with a deadline.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.control_plane import INITIAL_CALLBACK_TOKEN, ControlPlaneDouble

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 15.0
HEALTH_POLL_SECONDS = 0.05
# Fast heartbeats so tests see several without sleeping long.
TEST_HEARTBEAT_SECONDS = "0.5"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class AgentProcess:
    control_plane: ControlPlaneDouble
    port: int
    state_dir: Path
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    scheme: str = "http"
    # Another interpreter runs an installed agent (e.g. from the build artifact's venv).
    python: str = sys.executable
    cwd: Path = ROOT

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.scheme == 'https' else 'ws'}://127.0.0.1:{self.port}"

    @property
    def token_file(self) -> Path:
        return Path(self.env["SAM_CALLBACK_TOKEN_FILE"])

    def auth(self, token: str | None = None) -> dict[str, str]:
        """An Authorization header with `token`, by default a fresh sam:agent token."""
        return {"Authorization": f"Bearer {token or self.control_plane.agent_token()}"}

    def client(self, token: str | None = None, **kwargs: object) -> httpx.Client:
        """A sync client authorized as the control plane (pass token="" for none)."""
        headers = {} if token == "" else self.auth(token)
        return httpx.Client(base_url=self.url, headers=headers, timeout=10.0, **kwargs)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> "AgentProcess":
        assert not self.running, "the agent is already running"
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [self.python, "-m", "agent"],
                cwd=self.cwd,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
            )
        self.wait_until_healthy()
        return self

    def wait_until_healthy(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the agent exited with {self.process.returncode}:\n{self.log()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0, verify=False).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(HEALTH_POLL_SECONDS)
        raise TimeoutError(f"the agent did not answer /health in {timeout}s:\n{self.log()}")

    def kill(self) -> None:
        """kill -9: no shutdown code runs."""
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait()

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """SIGTERM (or `sig`) and wait; SIGKILL after STOP_TIMEOUT_SECONDS. The exit code."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def restart(self) -> "AgentProcess":
        """Stop it if it runs (SIGTERM), then start it again with the same config."""
        if self.running:
            self.stop()
        return self.start()


def agent_environ(
    control_plane: ControlPlaneDouble,
    state_dir: Path,
    port: int,
    backend: str = "docker",
    extra_env: dict[str, str] | None = None,
) -> dict[str, str]:
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SAM_")}
    return {
        **inherited,
        **control_plane.agent_env(),
        "SAM_AGENT_HOST": "127.0.0.1",
        "SAM_AGENT_PORT": str(port),
        "SAM_STATE_DIR": str(state_dir),
        "SAM_CALLBACK_TOKEN_FILE": str(state_dir / "callback-token"),
        "SAM_BACKEND": backend,
        "SAM_HEARTBEAT_SECONDS": TEST_HEARTBEAT_SECONDS,
        "SAM_LOG_LEVEL": "DEBUG",
        "PYTHONUNBUFFERED": "1",
        **(extra_env or {}),
    }


def start_agent(
    control_plane: ControlPlaneDouble,
    state_dir: Path,
    backend: str = "docker",
    extra_env: dict[str, str] | None = None,
    port: int | None = None,
    python: str = sys.executable,
    cwd: Path = ROOT,
) -> AgentProcess:
    """A running agent; the caller stops it (the `agent_factory` fixture does)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    env = agent_environ(control_plane, state_dir, port, backend, extra_env)
    token_file = Path(env["SAM_CALLBACK_TOKEN_FILE"])
    if not token_file.exists():
        token_file.write_text(INITIAL_CALLBACK_TOKEN)
        token_file.chmod(0o600)
    scheme = "https" if env.get("SAM_TLS_CERT") else "http"
    log_path = state_dir.parent / f"{state_dir.name}-agent-{port}.log"
    agent = AgentProcess(
        control_plane, port, state_dir, env, log_path, scheme=scheme, python=python, cwd=cwd
    )
    return agent.start()
