"""Docker Engine (docker SDK, calls in a thread) and the real devcontainer CLI.

Containers carry SAM's labels and are found again by label, so an agent that restarts finds
the containers its workspaces run in. Commands run without a shell, their output read in
chunks into bounded tails, and stop on a ladder (SIGTERM, then SIGKILL) on timeout or
cancellation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import docker.errors

from agent.errors import ContainerError
from agent.shell import INHERITED_ENV_NAMES

LABEL_WORKSPACE = "sam.workspace"
LABEL_NODE = "sam.node"
LABEL_MANAGED_BY = "sam.managed-by"
MANAGED_BY = "sam-agent"

OUTPUT_TAIL_BYTES = 16 * 1024
READ_CHUNK_BYTES = 64 * 1024
MAX_LINE_BYTES = 64 * 1024
STOP_GRACE_SECONDS = 5.0
DEVCONTAINER_UP_TIMEOUT_SECONDS = 900.0
CONTAINER_STOP_TIMEOUT_SECONDS = 10
DEVCONTAINER_CLI = Path("node_modules") / ".bin" / "devcontainer"
# The project root holds node_modules/; this module sits in <root>/agent/.
PROJECT_ROOT = Path(__file__).resolve().parents[1]

LineHandler = Callable[[str], None]

# What the agent's child tools (git, the devcontainer CLI) see of its environment: enough
# to reach Docker, SSH agents and proxies. Never the rest: a devcontainer.json can read
# the CLI's environment through ${localEnv:NAME}.
CHILD_ENV_NAMES = (
    *INHERITED_ENV_NAMES,
    "SSH_AUTH_SOCK",
    "TMPDIR",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
)


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a tool the agent runs: CHILD_ENV_NAMES plus `overrides`."""
    inherited = {name: os.environ[name] for name in CHILD_ENV_NAMES if name in os.environ}
    return inherited | overrides


# --- commands -------------------------------------------------------------------------------


@dataclass(frozen=True)
class CommandResult:
    returncode: int
    stdout: str  # the last OUTPUT_TAIL_BYTES
    stderr: str  # the last OUTPUT_TAIL_BYTES
    timed_out: bool = False


class _Tail:
    """The last `limit` bytes of a stream, plus its complete lines for a line handler."""

    def __init__(self, limit: int, on_line: LineHandler | None) -> None:
        self.limit = limit
        self.data = bytearray()
        self.on_line = on_line
        self.partial = bytearray()

    def feed(self, chunk: bytes) -> None:
        self.data += chunk
        del self.data[: max(0, len(self.data) - self.limit)]
        if self.on_line is None:
            return
        self.partial += chunk
        *lines, rest = self.partial.split(b"\n")
        self.partial = bytearray(rest[-MAX_LINE_BYTES:])
        for line in lines:
            self.on_line(line[:MAX_LINE_BYTES].decode("utf-8", "replace"))

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


async def _pump(stream: asyncio.StreamReader, tail: _Tail) -> None:
    while chunk := await stream.read(READ_CHUNK_BYTES):
        tail.feed(chunk)


async def run_command(
    argv: Sequence[str],
    *,
    timeout_seconds: float,
    cwd: str | Path | None = None,
    env: Mapping[str, str] | None = None,
    on_stderr_line: LineHandler | None = None,
) -> CommandResult:
    """Run `argv` (no shell) to completion, keeping bounded tails of its output.

    On timeout or cancellation the process group is stopped on a ladder; a timeout is
    reported in the result, a cancellation re-raised.
    """
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=dict(env) if env is not None else None,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # its own process group, so the ladder reaches children
    )
    assert process.stdout is not None and process.stderr is not None
    out, err = _Tail(OUTPUT_TAIL_BYTES, None), _Tail(OUTPUT_TAIL_BYTES, on_stderr_line)
    readers = asyncio.gather(_pump(process.stdout, out), _pump(process.stderr, err))
    timed_out = False
    try:
        await asyncio.wait_for(asyncio.shield(readers), timeout_seconds)
        returncode = await process.wait()
    except TimeoutError:
        timed_out = True
        returncode = await _stop_group(process)
        readers.cancel()
    except asyncio.CancelledError:
        await _stop_group(process)
        readers.cancel()
        raise
    return CommandResult(returncode, out.text(), err.text(), timed_out)


async def _stop_group(process: asyncio.subprocess.Process) -> int:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        try:
            return await asyncio.wait_for(process.wait(), STOP_GRACE_SECONDS)
        except TimeoutError:
            continue
    return await process.wait()


def stderr_tail(text: str, lines: int = 20) -> str:
    """The last few non-empty lines of a command's stderr, for a boot-log detail."""
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


# --- the devcontainer CLI -------------------------------------------------------------------


@dataclass(frozen=True)
class UpResult:
    outcome: str
    container_id: str | None
    remote_user: str | None
    remote_workspace_folder: str | None
    message: str | None = None
    description: str | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome == "success"


def parse_up_output(stdout: str) -> UpResult | None:
    """The result of `devcontainer up`: its last stdout line that is a JSON object."""
    for line in reversed(stdout.splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "outcome" in data:
            return UpResult(
                outcome=str(data["outcome"]),
                container_id=data.get("containerId"),
                remote_user=data.get("remoteUser"),
                remote_workspace_folder=data.get("remoteWorkspaceFolder"),
                message=data.get("message"),
                description=data.get("description"),
            )
    return None


def find_devcontainer_cli(project_root: Path = PROJECT_ROOT) -> str:
    """The devcontainer CLI: the project's pinned copy, else one on PATH."""
    pinned = project_root / DEVCONTAINER_CLI
    if os.access(pinned, os.X_OK):
        return str(pinned)
    on_path = shutil.which("devcontainer")
    if on_path:
        return on_path
    raise ContainerError(
        f"the devcontainer CLI is not at {pinned} nor on PATH",
        step="devcontainer up",
        hint="run `npm ci` in the agent's project directory (it pins @devcontainers/cli)",
    )


class DevcontainerCLI:
    def __init__(self, path: str | None = None) -> None:
        self.path = path or find_devcontainer_cli()

    def up_argv(
        self,
        workspace_folder: Path,
        labels: Mapping[str, str],
        *,
        override_config: Path | None = None,
    ) -> list[str]:
        argv = [self.path, "up", "--workspace-folder", str(workspace_folder)]
        for name, value in labels.items():
            argv += ["--id-label", f"{name}={value}"]
        if override_config is not None:
            argv += ["--override-config", str(override_config)]
        # The agent makes the workspace belong to the container's user itself; the CLI's
        # UID update would build an extra image per workspace.
        argv += ["--update-remote-user-uid-default", "off", "--log-format", "text"]
        return argv

    async def up(
        self,
        workspace_folder: Path,
        labels: Mapping[str, str],
        *,
        override_config: Path | None = None,
        on_log_line: LineHandler | None = None,
        timeout_seconds: float = DEVCONTAINER_UP_TIMEOUT_SECONDS,
    ) -> tuple[UpResult | None, CommandResult]:
        argv = self.up_argv(workspace_folder, labels, override_config=override_config)
        result = await run_command(
            argv, timeout_seconds=timeout_seconds, env=child_env(), on_stderr_line=on_log_line
        )
        return parse_up_output(result.stdout), result


# --- the Docker Engine ----------------------------------------------------------------------


@dataclass(frozen=True)
class ContainerInfo:
    id: str
    name: str
    status: str  # created, running, paused, restarting, removing, exited, dead
    running: bool
    exit_code: int | None
    labels: dict[str, str]
    image: str | None
    started_at: str | None
    finished_at: str | None


def parse_inspect(data: Mapping[str, Any]) -> ContainerInfo:
    """One container from `docker inspect` (or the SDK's `container.attrs`)."""
    state = data.get("State") or {}
    config = data.get("Config") or {}
    return ContainerInfo(
        id=data["Id"],
        name=str(data.get("Name", "")).lstrip("/"),
        status=state.get("Status", "unknown"),
        running=bool(state.get("Running")),
        exit_code=state.get("ExitCode"),
        labels=dict(config.get("Labels") or {}),
        image=config.get("Image"),
        started_at=state.get("StartedAt"),
        finished_at=state.get("FinishedAt"),
    )


def workspace_labels(workspace_id: str, node_id: str) -> dict[str, str]:
    return {LABEL_WORKSPACE: workspace_id, LABEL_NODE: node_id, LABEL_MANAGED_BY: MANAGED_BY}


class DockerEngine:
    """The Docker Engine through the docker SDK; every call runs in a worker thread."""

    def __init__(self, client: docker.DockerClient | None = None) -> None:
        self._client = client

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            try:
                self._client = docker.from_env()
            except docker.errors.DockerException as exc:
                raise _engine_error("connect to the Docker Engine", exc) from exc
        return self._client

    async def ping(self) -> None:
        await self._call("reach the Docker Engine", lambda: self.client.ping())

    async def find(self, labels: Mapping[str, str]) -> list[ContainerInfo]:
        """Every container (running or not) that carries all of `labels`."""
        filters = {"label": [f"{name}={value}" for name, value in labels.items()]}

        def find() -> list[ContainerInfo]:
            found = self.client.containers.list(all=True, filters=filters)
            return [parse_inspect(container.attrs) for container in found]

        return await self._call("list containers", find)

    async def inspect(self, container_id: str) -> ContainerInfo | None:
        def inspect() -> ContainerInfo | None:
            try:
                return parse_inspect(self.client.api.inspect_container(container_id))
            except docker.errors.NotFound:
                return None

        return await self._call("inspect a container", inspect)

    async def start(self, container_id: str) -> None:
        await self._call("start the container", lambda: self.client.api.start(container_id))

    async def stop(self, container_id: str) -> None:
        await self._call(
            "stop the container",
            lambda: self.client.api.stop(container_id, timeout=CONTAINER_STOP_TIMEOUT_SECONDS),
        )

    async def remove(self, container_id: str) -> None:
        """Remove a container, running or not; one that is already gone is fine."""

        def remove() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_container(container_id, force=True, v=True)

        await self._call("remove the container", remove)

    async def exec(self, container_id: str, argv: list[str], user: str) -> tuple[int, str]:
        """Run `argv` in the container as `user`; (exit code, combined output)."""

        def run() -> tuple[int, str]:
            container = self.client.containers.get(container_id)
            code, output = container.exec_run(argv, user=user, stdin=False, tty=False)
            return code, output.decode("utf-8", "replace")[-OUTPUT_TAIL_BYTES:]

        return await self._call("run a command in the container", run)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    async def _call(self, what: str, function: Callable[[], Any]) -> Any:
        try:
            return await asyncio.to_thread(function)
        except docker.errors.DockerException as exc:
            raise _engine_error(what, exc) from exc


def _engine_error(what: str, exc: Exception) -> ContainerError:
    return ContainerError(
        f"could not {what}: {exc}",
        step="docker",
        detail=str(exc)[-OUTPUT_TAIL_BYTES:],
        hint="check that `docker info` answers; scripts/docker-engine starts an engine",
    )
