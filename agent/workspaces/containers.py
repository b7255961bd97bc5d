"""Docker Engine (docker SDK, calls in a thread) and the real devcontainer CLI.

Containers carry SAM's labels and are found again by label, so an agent that restarts finds
the containers its workspaces run in. The CLI runs through agent/process.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors

from agent.errors import ContainerError
from agent.process import (
    OUTPUT_TAIL_BYTES,
    CommandResult,
    LineHandler,
    child_env,
    run_command,
    stderr_tail,
)

LABEL_WORKSPACE = "sam.workspace"
LABEL_NODE = "sam.node"
LABEL_MANAGED_BY = "sam.managed-by"
MANAGED_BY = "sam-agent"

DEVCONTAINER_UP_TIMEOUT_SECONDS = 900.0
READ_CONFIG_TIMEOUT_SECONDS = 60.0
CONTAINER_STOP_TIMEOUT_SECONDS = 10
DEVCONTAINER_CLI = Path("node_modules") / ".bin" / "devcontainer"
# The project root holds node_modules/; this module sits in <root>/agent/.
PROJECT_ROOT = Path(__file__).resolve().parents[2]


# --- the devcontainer CLI -------------------------------------------------------------------


@dataclass(frozen=True)
class UpResult:
    outcome: str
    container_id: str | None
    remote_user: str | None
    remote_workspace_folder: str | None
    message: str | None = None
    description: str | None = None
    # devcontainer.json's remoteEnv, its ${containerEnv:...} already resolved by the CLI:
    # what terminals get on top of the container's environment (null values dropped).
    remote_env: dict[str, str] = field(default_factory=dict)

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
                remote_env=_remote_env(data.get("mergedConfiguration")),
            )
    return None


def _remote_env(merged: Any) -> dict[str, str]:
    remote_env = merged.get("remoteEnv") if isinstance(merged, dict) else None
    if not isinstance(remote_env, dict):
        return {}
    return {str(k): v for k, v in remote_env.items() if isinstance(v, str)}


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
        mounts: Sequence[str] = (),
    ) -> list[str]:
        argv = [self.path, "up", "--workspace-folder", str(workspace_folder)]
        for name, value in labels.items():
            argv += ["--id-label", f"{name}={value}"]
        for mount in mounts:  # SAM's own, beside (and out of reach of) devcontainer.json's
            argv += ["--mount", mount]
        if override_config is not None:
            argv += ["--override-config", str(override_config)]
        # The agent makes the workspace belong to the container's user itself; the CLI's
        # UID update would build an extra image per workspace.
        argv += ["--update-remote-user-uid-default", "off", "--log-format", "text"]
        argv += ["--include-merged-configuration"]  # for remoteEnv
        return argv

    async def read_configuration(self, workspace_folder: Path, config: Path) -> dict[str, Any]:
        """`config` as the CLI reads it (JSON with comments, variables substituted)."""
        argv = [self.path, "read-configuration", "--workspace-folder", str(workspace_folder)]
        argv += ["--config", str(config), "--log-format", "text"]
        timeout = READ_CONFIG_TIMEOUT_SECONDS
        result = await run_command(argv, timeout_seconds=timeout, env=child_env())
        try:
            data = json.loads(result.stdout.strip().splitlines()[-1])
            configuration = data["configuration"]
            assert isinstance(configuration, dict)
            return configuration
        except (IndexError, ValueError, KeyError, TypeError, AssertionError):
            raise ContainerError(
                f"could not read {config.name} (exit code {result.returncode})",
                step="devcontainer config",
                detail=stderr_tail(result.stderr),
                hint="fix the JSON of the repository's devcontainer.json",
            ) from None

    async def up(
        self,
        workspace_folder: Path,
        labels: Mapping[str, str],
        *,
        override_config: Path | None = None,
        mounts: Sequence[str] = (),
        on_log_line: LineHandler | None = None,
        timeout_seconds: float = DEVCONTAINER_UP_TIMEOUT_SECONDS,
    ) -> tuple[UpResult | None, CommandResult]:
        argv = self.up_argv(
            workspace_folder, labels, override_config=override_config, mounts=mounts
        )
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


BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


@dataclass(frozen=True)
class NetworkInfo:
    id: str
    name: str
    bridge: str  # the host's interface
    subnet: str
    gateway: str
    labels: dict[str, str]


def parse_network(data: Mapping[str, Any]) -> NetworkInfo:
    """One network from `docker network inspect`."""
    config = ((data.get("IPAM") or {}).get("Config") or [{}])[0]
    return NetworkInfo(
        id=data["Id"],
        name=str(data.get("Name", "")),
        bridge=str((data.get("Options") or {}).get(BRIDGE_NAME_OPTION, "")),
        subnet=str(config.get("Subnet", "")),
        gateway=str(config.get("Gateway", "")),
        labels=dict(data.get("Labels") or {}),
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

    async def ensure_volume(
        self, name: str, driver_opts: Mapping[str, str], labels: Mapping[str, str]
    ) -> None:
        """Create a volume of the local driver unless one with that name exists."""

        def ensure() -> None:
            try:
                self.client.volumes.get(name)
            except docker.errors.NotFound:
                self.client.volumes.create(
                    name, driver="local", driver_opts=dict(driver_opts), labels=dict(labels)
                )

        await self._call("create a volume", ensure)

    async def find_networks(self, labels: Mapping[str, str]) -> list[NetworkInfo]:
        """Every network that carries all of `labels`."""
        filters = {"label": [f"{name}={value}" for name, value in labels.items()]}

        def find() -> list[NetworkInfo]:
            found = self.client.api.networks(filters=filters)
            return [parse_network(self.client.api.inspect_network(n["Id"])) for n in found]

        return await self._call("list networks", find)

    async def create_network(
        self, name: str, bridge: str, labels: Mapping[str, str]
    ) -> NetworkInfo:
        """A bridge network whose host side is the interface `bridge`."""

        def create() -> NetworkInfo:
            created = self.client.api.create_network(
                name,
                driver="bridge",
                options={BRIDGE_NAME_OPTION: bridge},
                labels=dict(labels),
            )
            return parse_network(self.client.api.inspect_network(created["Id"]))

        return await self._call("create the workspace network", create)

    async def remove_network(self, network_id: str) -> None:
        """Remove a network; one that is already gone is fine."""

        def remove() -> None:
            with contextlib.suppress(docker.errors.NotFound):
                self.client.api.remove_network(network_id)

        await self._call("remove the workspace network", remove)

    async def volume_device(self, name: str) -> str | None:
        """The host path a local volume binds (its `device` option), if any."""

        def device() -> str | None:
            try:
                options = self.client.api.inspect_volume(name).get("Options") or {}
            except docker.errors.NotFound:
                return None
            return options.get("device")

        return await self._call("inspect a volume", device)

    async def inspect_raw(self, container_id: str) -> dict[str, Any]:
        """`docker inspect` of a container, as the Engine answers it."""
        return await self._call(
            "inspect a container", lambda: self.client.api.inspect_container(container_id)
        )

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
