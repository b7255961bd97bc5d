"""A cloud VM's first boot, on this machine: follow a node's `#cloud-config` as cloud-init
would, closely enough that a real agent comes up from it.

What it does, from the user_data alone:

1. parses the `#cloud-config` (YAML) and writes every `write_files` entry (with its mode)
   under a root directory of its own;
2. runs `runcmd`'s setup steps — the numbered scripts `/opt/sam-agent/setup/NN-*.sh` —
   in order, each with `sh -eu`, stopping at the first that fails, as the runner does.
   So the agent artifact is really downloaded from the control plane's
   /api/agent/download with curl, checked and installed by its own install.sh, and the
   bootstrap token really exchanged with curl at POST /api/bootstrap/{token};
3. starts the agent as the systemd unit from the installed artifact says
   (`Environment=`, `EnvironmentFile=`, `ExecStart=`), and runs the ready step after.

Deviations, all because many "VMs" share one unprivileged-ish test machine:

- every path under /etc/sam-agent, /opt/sam-agent and /var/lib/sam-agent is re-rooted
  under the VM's directory (in the files written and in the commands run);
- SAM_AGENT_PORT in the env file becomes a free loopback port and SAM_AGENT_HOST
  127.0.0.1 (the fake reports the server's IP as 127.0.0.1);
- the steps that need root or the internet or would change this machine are not run:
  PRIVILEGED_STEPS (packages, container tools from the npm registry, firewall, systemd);
  the firewall's rules are applied in network namespaces by
  tests/worker/nodes/test_firewall.py instead, and 35-tls.sh runs as written (openssl
  makes the key; the control plane has the loopback Cloudflare's Origin CA sign its CSR);
  the agent is started directly instead,
  as the current user, with this machine's PATH (plus the project's node_modules/.bin,
  where the devcontainer CLI that 10-packages.sh would install lives here).
"""

import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tests.support.docker_objects import remove_labelled

ROOT = Path(__file__).resolve().parents[2]
REROOTED = ("/etc/sam-agent", "/opt/sam-agent", "/var/lib/sam-agent")
SETUP_DIR = "/opt/sam-agent/setup"
STEP = re.compile(r"[0-9]{2}-[a-z-]+\.sh")
# 25-container-tools.sh downloads Node 22 and the adapters (hundreds of MB) from the npm
# registry: the VM's agent here uses the checkout's installed tools/container instead, and
# tests/worker/nodes/test_cloud_init.py runs the step's npm command against its lock offline.
PRIVILEGED_STEPS = frozenset({"10-packages.sh", "25-container-tools.sh", "40-firewall.sh"})
SERVICE_STEP = "50-service.sh"
STEP_TIMEOUT_SECONDS = 300
STOP_TIMEOUT_SECONDS = 15
OUTPUT_TAIL_CHARS = 4000


@dataclass
class StepResult:
    name: str
    returncode: int | None  # None: skipped
    output: str


@dataclass
class FirstBoot:
    user_data: str
    root: Path
    steps: list[StepResult] = field(default_factory=list)
    agent: subprocess.Popen[bytes] | None = None
    agent_port: int = 0
    error: str | None = None
    done: threading.Event = field(default_factory=threading.Event)
    cancelled: threading.Event = field(default_factory=threading.Event)

    def path(self, absolute: str) -> Path:
        return Path(self.reroot(absolute))

    def reroot(self, text: str) -> str:
        for prefix in REROOTED:
            text = text.replace(prefix, f"{self.root}{prefix}")
        return text

    def run(self) -> None:
        """The whole boot; failures end up in `error` and `steps`, never raised."""
        try:
            self._boot()
        except Exception as exc:  # a fake's thread: report, don't die silently
            self.error = f"{type(exc).__name__}: {exc}"
        finally:
            self.done.set()

    def _boot(self) -> None:
        first_line, _, _ = self.user_data.partition("\n")
        if first_line.strip() != "#cloud-config":
            raise ValueError("user_data is not a #cloud-config")
        config = yaml.safe_load(self.user_data)
        for entry in config.get("write_files") or []:
            self._write(entry)
        commands = config.get("runcmd") or []
        if commands != [["sh", f"{SETUP_DIR}/run"]]:
            raise ValueError(f"unexpected runcmd {commands!r}")
        setup = self.path(SETUP_DIR)
        for script in sorted(p for p in setup.iterdir() if STEP.fullmatch(p.name)):
            if self.cancelled.is_set():
                raise RuntimeError("the server was deleted while it booted")
            if script.name in PRIVILEGED_STEPS:
                self.steps.append(StepResult(script.name, None, "not run (root/network)"))
                continue
            if script.name == SERVICE_STEP:
                self._start_agent()
                self.steps.append(StepResult(script.name, None, "agent started directly"))
                continue
            done = subprocess.run(
                ["sh", "-eu", str(script)],
                cwd=self.root,
                env=self._machine_env(),
                capture_output=True,
                text=True,
                timeout=STEP_TIMEOUT_SECONDS,
            )
            output = (done.stdout + done.stderr)[-OUTPUT_TAIL_CHARS:]
            self.steps.append(StepResult(script.name, done.returncode, output))
            if done.returncode != 0:
                raise RuntimeError(f"{script.name} failed ({done.returncode}): {output}")

    def _write(self, entry: dict) -> None:
        target = self.path(entry["path"])
        content = self.reroot(entry.get("content", ""))
        if entry["path"] == "/etc/sam-agent/env":
            content = self._loopback_env(content)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(int(str(entry.get("permissions", "0644")), 8))

    def _loopback_env(self, content: str) -> str:
        self.agent_port = _free_port()
        lines = []
        for line in content.splitlines():
            name = line.partition("=")[0]
            if name == "SAM_AGENT_PORT":
                line = f"SAM_AGENT_PORT={self.agent_port}"
            elif name == "SAM_AGENT_HOST":
                line = "SAM_AGENT_HOST=127.0.0.1"
            lines.append(line)
        return "\n".join(lines) + "\n"

    def _machine_env(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("SAM_")}
        environ["PATH"] = f"{ROOT / 'node_modules' / '.bin'}:{environ.get('PATH', '')}"
        return environ

    def _start_agent(self) -> None:
        """What `systemctl enable --now sam-agent` does with the artifact's unit."""
        units = list(self.path("/opt/sam-agent").glob("sam-agent-*/sam-agent.service"))
        if len(units) != 1:
            raise RuntimeError(f"expected one installed sam-agent.service, found {units}")
        environment: dict[str, str] = {}
        env_files: list[Path] = []
        exec_start: list[str] = []
        for raw in self.reroot(units[0].read_text()).splitlines():
            key, _, value = raw.partition("=")
            if key == "Environment":
                name, _, setting = value.partition("=")
                environment[name] = setting
            elif key == "EnvironmentFile":
                env_files.append(Path(value.lstrip("-")))
            elif key == "ExecStart":
                exec_start = shlex.split(value)
        # systemd: EnvironmentFile= settings override Environment= ones.
        for env_file in env_files:
            for line in env_file.read_text().splitlines():
                if line.strip() and not line.startswith("#"):
                    name, _, setting = line.partition("=")
                    environment[name] = setting
        # What the skipped 25-container-tools.sh would have installed (see PRIVILEGED_STEPS).
        environment["SAM_CONTAINER_TOOLS"] = str(ROOT / "tools" / "container")
        for directory in ("SAM_STATE_DIR", "HOME"):
            if directory in environment:
                Path(environment[directory]).mkdir(parents=True, exist_ok=True)
        log = (self.root / "agent.log").open("ab")
        self.agent = subprocess.Popen(
            exec_start,
            cwd=self.root,
            env={**self._machine_env(), **environment},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()

    def agent_log(self) -> str:
        path = self.root / "agent.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def report(self) -> str:
        """Every step and its output, then the agent's log: for a failing test's message."""
        lines = [f"error: {self.error}"] if self.error else []
        for step in self.steps:
            lines.append(f"--- {step.name}: {step.returncode}\n{step.output}")
        return "\n".join(lines) + "\n--- agent.log\n" + self.agent_log()[-OUTPUT_TAIL_CHARS:]

    def shut_down(self) -> None:
        """The VM is deleted: the agent stops (SIGTERM, then SIGKILL), its disk goes."""
        self.cancelled.set()
        self.done.wait(STEP_TIMEOUT_SECONDS)  # a step in flight finishes; no later one starts
        if self.agent is not None and self.agent.poll() is None:
            self.agent.send_signal(signal.SIGTERM)
            try:
                self.agent.wait(STOP_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                self.agent.kill()
                self.agent.wait()
        self._remove_containers()
        shutil.rmtree(self.root, ignore_errors=True)

    def _remove_containers(self) -> None:
        """The VM's containers die with it; here they run in this machine's engine."""
        node_id = self.setting("SAM_NODE_ID")
        if node_id is None or shutil.which("docker") is None:
            return
        remove_labelled(f"sam.node={node_id}")  # containers and workspace networks

    def setting(self, name: str) -> str | None:
        """A value from the agent's env file, as cloud-init wrote it."""
        env_file = self.path("/etc/sam-agent/env")
        if not env_file.exists():
            return None
        for line in env_file.read_text().splitlines():
            key, _, value = line.partition("=")
            if key == name:
                return value
        return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
