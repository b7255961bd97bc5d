"""Where a workspace runs: the backend, chosen once (`choose_backend`) from SAM_BACKEND.

DockerBackend brings up a devcontainer per workspace with the real devcontainer CLI and
finds it again by its labels; HostBackend runs the shells on this machine (NOT isolated,
local development only). The WorkspaceManager drives either through `Backend`.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from agent.channel import Channels
from agent.config import AgentConfig
from agent.errors import ConfigError, ContainerError
from agent.process import LineHandler, stderr_tail
from agent.sessions.tools import installed, tools_mount, volume_name
from agent.shell import ShellCommand
from agent.workspaces import policy
from agent.workspaces.boot_log import BootLog, StepStatus
from agent.workspaces.containers import DevcontainerCLI, DockerEngine, workspace_labels
from agent.workspaces.firewall import NOT_ROOT, Firewall
from agent.workspaces.sandbox import Sandbox, Sandboxes
from wire.states import LifecycleState

log = logging.getLogger("agent.workspaces.backends")

Mode = Literal["create", "restart", "rebuild"]
TERM = "xterm-256color"
# The base image's user (scripts/build-image) and the usual first non-root uid of other
# devcontainer images: the checkout belongs to it before `devcontainer up`, so that
# postCreateCommand can write to the workspace.
CONTAINER_UID = 1000
CONTAINER_GID = 1000
DEFAULT_CONFIG_DIRNAME = ".sam"
NOT_ISOLATED = (
    "SAM_BACKEND=host: workspaces are NOT isolated; their shells run directly on this "
    "machine as {user}. Use it for local development only."
)
# devcontainer CLI log lines that start a lifecycle command (onCreate, postCreate, ...).
_LIFECYCLE_LINE = re.compile(r"Running the (\w+Command) from devcontainer\.json")


@dataclass(frozen=True)
class Observed:
    status: Literal["running", "stopped", "gone", "unknown"]
    container_id: str | None = None
    message: str | None = None


class Backend(Protocol):
    name: str

    async def prepare(self) -> None: ...
    async def resume(self, record: dict[str, Any]) -> None: ...
    async def observe(self, record: dict[str, Any]) -> Observed: ...
    async def up(
        self, record: dict[str, Any], checkout: Path, boot: BootLog, mode: Mode
    ) -> dict[str, Any]: ...
    async def stop(self, record: dict[str, Any]) -> None: ...
    async def remove(self, record: dict[str, Any]) -> None: ...
    def shell_command(self, record: dict[str, Any]) -> ShellCommand: ...
    def close(self) -> None: ...


def choose_backend(config: AgentConfig, channels: Channels | None = None) -> Backend:
    if config.backend == "host":
        return HostBackend(config)
    return DockerBackend(config, channels=channels)


class DockerBackend:
    """A devcontainer per workspace, on the Docker Engine, found by its labels."""

    name = "docker"

    def __init__(
        self,
        config: AgentConfig,
        engine: DockerEngine | None = None,
        channels: Channels | None = None,
    ) -> None:
        self.config = config
        self.engine = engine or DockerEngine()
        self.firewall = Firewall()
        self.sandboxes = Sandboxes(self.engine, config.node_id, channels, self.firewall)
        self._cli: DevcontainerCLI | None = None

    async def prepare(self) -> None:
        try:
            await self.engine.ping()
        except ContainerError as exc:
            log.error("workspaces.docker_unavailable message=%s hint=%s", exc.message, exc.hint)
        if not self.firewall.enabled:
            log.warning("workspaces.no_firewall %s", NOT_ROOT)
            return
        try:  # at start, before any workspace runs again; `up` fails while it is missing
            await self.firewall.install()
        except ContainerError as exc:
            log.error("workspaces.no_firewall message=%s hint=%s", exc.message, exc.hint)

    async def resume(self, record: dict[str, Any]) -> None:
        try:
            await self.sandboxes.resume(record["id"])
        except ContainerError as exc:  # the workspace's state says the rest
            log.error("workspace.resume_failed id=%s message=%s", record["id"], exc.message)

    async def observe(self, record: dict[str, Any]) -> Observed:
        try:
            found = await self.engine.find(self._labels(record))
        except ContainerError as exc:
            message = f"could not check the container: {exc.message}. Next: {exc.hint}"
            return Observed("unknown", None, message)
        if not found:
            message = "the container is gone (removed outside the agent?); rebuild the workspace"
            return Observed("gone", None, message)
        found.sort(key=lambda c: (not c.running, c.id != record.get("container_id")))
        return Observed("running" if found[0].running else "stopped", found[0].id)

    async def up(
        self, record: dict[str, Any], checkout: Path, boot: BootLog, mode: Mode
    ) -> dict[str, Any]:
        labels = self._labels(record)
        existing = await self.engine.find(labels) if mode != "create" else []
        if mode == "rebuild" and existing:
            await boot.add("remove container", StepStatus.STARTED, "removing the old container")
            for container in existing:
                await self.engine.remove(container.id)
            await boot.add("remove container", StepStatus.SUCCEEDED, "old container removed")
        # A restart goes through the CLI as well: it finds the stopped container by its
        # labels, starts it and runs postStartCommand again (postCreateCommand it skips).
        config = await self._configure(record, checkout, boot)  # refused before anything runs
        sandbox = await self.sandboxes.ensure(record["id"])
        config["runArgs"] = policy.sam_run_args(config, sandbox.run_args())
        override = checkout.parent / DEFAULT_CONFIG_DIRNAME / "devcontainer.json"
        override.parent.mkdir(parents=True, exist_ok=True)
        override.write_text(json.dumps(config, indent=2) + "\n")
        tools = self.config.container_tools
        mounts = [await tools_mount(self.engine, tools)] if installed(tools) else []
        result = await self._up(checkout, labels, override, mounts, boot)
        if not record.get("trusted_devcontainer"):
            await self._verify(result["container_id"], sandbox, checkout)
        await self._settle_ownership(result["container_id"], result["remote_user"], checkout)
        return result

    async def stop(self, record: dict[str, Any]) -> None:
        for container in await self.engine.find(self._labels(record)):
            if container.running:
                await self.engine.stop(container.id)

    async def remove(self, record: dict[str, Any]) -> None:
        for container in await self.engine.find(self._labels(record)):
            await self.engine.remove(container.id)
        await self.sandboxes.remove(record["id"])

    def shell_command(self, record: dict[str, Any]) -> ShellCommand:
        return ShellCommand(
            ["bash", "-l"],
            {**(record.get("remote_env") or {}), "TERM": TERM},
            cwd=record["remote_folder"],
            container=record["container_id"],
            user=record["remote_user"],
        )

    def close(self) -> None:
        self.engine.close()

    def _labels(self, record: dict[str, Any]) -> dict[str, str]:
        return workspace_labels(record["id"], self.config.node_id)

    async def _configure(
        self, record: dict[str, Any], checkout: Path, boot: BootLog
    ) -> dict[str, Any]:
        """The configuration the CLI gets (from outside the checkout): the repository's,
        accepted by the policy, or a default."""
        trusted = bool(record.get("trusted_devcontainer"))
        own = policy.config_file(checkout, trusted=trusted)
        if own is None:
            config: dict[str, Any] = {"name": record["id"], "image": self.config.base_image}
            message = f"no devcontainer.json in the repository: default on {config['image']}"
        else:
            read = await self._devcontainer_cli().read_configuration(checkout, own)
            config = policy.sanitize(read, own, checkout, trusted=trusted)
            relative = own.relative_to(checkout)
            message = f"using the repository's {relative}" + (
                " as is (trusted by the node's owner)" if trusted else ", checked by SAM's policy"
            )
        if os.geteuid() == 0:
            await asyncio.to_thread(_chown_tree, checkout, CONTAINER_UID, CONTAINER_GID)
        await boot.add("devcontainer config", StepStatus.SUCCEEDED, message)
        return config

    async def _verify(self, container_id: str, sandbox: Sandbox, checkout: Path) -> None:
        """The policy again, on what the container really got; refused, it is removed."""
        inspect = await self.engine.inspect_raw(container_id)
        own = volume_name(self.config.container_tools)
        devices = {
            str(mount["Name"]): await self.engine.volume_device(str(mount["Name"]))
            for mount in inspect.get("Mounts") or []
            if mount.get("Type") == "volume" and mount.get("Name") != own
        }
        try:
            policy.verify_container(
                inspect,
                network=sandbox.network.name,
                binds={str(checkout), str(checkout.resolve())},
                volume_devices=devices,
            )
        except ContainerError:
            await self.engine.remove(container_id)
            raise

    def _devcontainer_cli(self) -> DevcontainerCLI:
        if self._cli is None:
            self._cli = DevcontainerCLI()
        return self._cli

    async def _up(
        self,
        checkout: Path,
        labels: dict[str, str],
        override: Path | None,
        mounts: list[str],
        boot: BootLog,
    ) -> dict[str, Any]:
        cli = self._devcontainer_cli()
        await boot.add("devcontainer up", StepStatus.STARTED, "starting the dev container")
        began = time.monotonic()
        # The CLI's log lines arrive in a sync callback; a queue keeps the entries in order.
        events: asyncio.Queue[str | None] = asyncio.Queue()
        commands: list[str] = []

        async def narrate() -> None:
            while (command := await events.get()) is not None:
                if not commands:
                    elapsed = time.monotonic() - began
                    up_done = f"container started in {elapsed:.1f} s"
                    await boot.add("devcontainer up", StepStatus.SUCCEEDED, up_done)
                commands.append(command)
                await boot.add("post-create", StepStatus.STARTED, f"running {command}")

        on_line: LineHandler = lambda line: (  # noqa: E731
            events.put_nowait(match[1]) if (match := _LIFECYCLE_LINE.search(line)) else None
        )
        narrator = asyncio.create_task(narrate())
        try:
            up, command = await cli.up(
                checkout, labels, override_config=override, mounts=mounts, on_log_line=on_line
            )
        finally:
            events.put_nowait(None)
            await narrator
        step = "post-create" if commands else "devcontainer up"
        if up is None or not up.succeeded or not up.container_id or not up.remote_user:
            raise _up_error(step, up, command.stderr, command.timed_out)
        elapsed = time.monotonic() - began
        if commands:
            ran = ", ".join(commands)
            await boot.add("post-create", StepStatus.SUCCEEDED, f"{ran} finished")
        else:
            await boot.add("devcontainer up", StepStatus.SUCCEEDED, f"up in {elapsed:.1f} s")
            await boot.add("post-create", StepStatus.SUCCEEDED, "no lifecycle commands")
        return {
            "container_id": up.container_id,
            "remote_user": up.remote_user,
            "remote_folder": up.remote_workspace_folder,
            "remote_env": up.remote_env,
        }

    async def _settle_ownership(self, container_id: str, user: str, checkout: Path) -> None:
        """Probe the container as its user (the shell must work) and make the checkout
        belong to that user when its ids are not the ones assumed before `up`."""
        code, output = await self.engine.exec(container_id, ["sh", "-c", "id -u; id -g"], user)
        ids = output.split()
        if code != 0 or len(ids) != 2 or not all(part.isdigit() for part in ids):
            raise ContainerError(
                f"the container does not run commands as {user} (exit code {code})",
                step="ready",
                detail=output[-2000:],
                hint="check remoteUser in devcontainer.json and that the image has /bin/sh",
            )
        uid, gid = int(ids[0]), int(ids[1])
        if os.geteuid() == 0 and (uid, gid) != (CONTAINER_UID, CONTAINER_GID):
            await asyncio.to_thread(_chown_tree, checkout, uid, gid)


def _up_error(step: str, up: Any, stderr: str, timed_out: bool) -> ContainerError:
    if timed_out:
        message, hint = "devcontainer up did not finish in time", "check the image build"
    elif up is None:
        message = "devcontainer up failed without a result"
        hint = "read the detail; check the Docker Engine and the devcontainer CLI"
    else:
        message = f"{up.description or 'devcontainer up failed'} ({up.message})"
        if step == "post-create":
            hint = "fix the lifecycle command in devcontainer.json, then rebuild the workspace"
        elif "docker pull" in (up.message or ""):
            hint = "the image is not on this node and no registry is used: build it first"
        else:
            hint = "check devcontainer.json and the Docker Engine, then rebuild the workspace"
    return ContainerError(message, step=step, hint=hint, detail=stderr_tail(stderr))


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    os.lchown(root, uid, gid)
    for directory, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            os.lchown(os.path.join(directory, name), uid, gid)


class HostBackend:
    """The workspace is the checkout; its shell runs on this machine. NOT isolated."""

    name = "host"

    def __init__(self, config: AgentConfig) -> None:
        if config.cloud_node:
            raise ConfigError(
                "SAM_BACKEND", "the host backend is not isolated and is refused on a cloud node"
            )
        self.warning = NOT_ISOLATED.format(user=getpass.getuser())

    async def prepare(self) -> None:
        log.warning("workspaces.not_isolated %s", self.warning)

    async def resume(self, record: dict[str, Any]) -> None:
        """Nothing to open again: the host backend has no sandbox and no channel."""

    async def observe(self, record: dict[str, Any]) -> Observed:
        if not Path(record["directory"]).is_dir():
            return Observed("gone", None, "the workspace directory is gone; rebuild it")
        return Observed("stopped" if record["state"] == LifecycleState.STOPPED else "running")

    async def up(
        self, record: dict[str, Any], checkout: Path, boot: BootLog, mode: Mode
    ) -> dict[str, Any]:
        await boot.add("host backend", StepStatus.SUCCEEDED, f"WARNING: {self.warning}")
        return {
            "container_id": None,
            "remote_user": getpass.getuser(),
            "remote_folder": str(checkout),
        }

    async def stop(self, record: dict[str, Any]) -> None:
        """Nothing runs but the shells, which the terminal manager ends."""

    async def remove(self, record: dict[str, Any]) -> None:
        """The manager removes the directory."""

    def shell_command(self, record: dict[str, Any]) -> ShellCommand:
        return ShellCommand(["bash", "-l"], {"TERM": TERM}, cwd=record["remote_folder"])

    def close(self) -> None:
        pass
