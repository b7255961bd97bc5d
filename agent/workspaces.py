"""WorkspaceManager: workspaces on this node, their lifecycle and states.

A workspace is a clone under SAM_STATE_DIR/workspaces/<id>/ plus, on the Docker backend,
a devcontainer brought up by the real devcontainer CLI and found again by label. The
backend is chosen once, when the manager is built. Provisioning runs in the background;
every step lands in the workspace's boot log, and the outcome is reported to the control
plane (`workspace_ready` / `provisioning_failed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import json
import logging
import os
import re
import shutil
import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Protocol

from agent.bootlog import BootLog, StepStatus
from agent.config import AgentConfig
from agent.containers import (
    DevcontainerCLI,
    DockerEngine,
    LineHandler,
    stderr_tail,
    workspace_labels,
)
from agent.errors import (
    ConfigError,
    ContainerError,
    InvalidTransition,
    InvalidWorkspaceSpec,
    ProvisioningError,
    WorkspaceExists,
    WorkspaceNotFound,
    WorkspaceNotRunning,
)
from agent.persistence import Store
from agent.repos import RepositorySource, clone, validate_branch, validate_repository
from agent.shell import ShellCommand

log = logging.getLogger("agent.workspaces")

# The same rule the control plane and the API use: it ends up in paths and labels.
WORKSPACE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
WORKSPACES_DIRNAME = "workspaces"
INTERRUPTED = "provisioning was interrupted by an agent restart; rebuild the workspace"


class WorkspaceState(StrEnum):
    PENDING = "pending"
    CREATING = "creating"
    RUNNING = "running"
    STOPPING = "stopping"
    STOPPED = "stopped"
    ERROR = "error"


S = WorkspaceState
# Observed changes count too: a container that exited on its own makes RUNNING → STOPPED.
ALLOWED_TRANSITIONS: dict[WorkspaceState, frozenset[WorkspaceState]] = {
    S.PENDING: frozenset({S.CREATING, S.ERROR}),
    S.CREATING: frozenset({S.RUNNING, S.STOPPED, S.ERROR}),
    S.RUNNING: frozenset({S.STOPPING, S.STOPPED, S.CREATING, S.ERROR}),
    S.STOPPING: frozenset({S.STOPPED, S.RUNNING, S.ERROR}),
    S.STOPPED: frozenset({S.CREATING, S.RUNNING, S.ERROR}),
    S.ERROR: frozenset({S.CREATING, S.RUNNING, S.STOPPING, S.STOPPED, S.ERROR}),
}
ACTIVE_STATES = frozenset({S.PENDING, S.CREATING, S.RUNNING, S.STOPPING})


def check_transition(workspace_id: str, current: str, target: WorkspaceState) -> None:
    """The one place a workspace state change is allowed or refused."""
    if target not in ALLOWED_TRANSITIONS[WorkspaceState(current)]:
        raise InvalidTransition(
            f"workspace {workspace_id} is {current}; it cannot become {target} from there"
        )


class Reporter(Protocol):
    async def boot_log(self, workspace_id: str, entry: dict[str, Any]) -> None: ...
    async def workspace_ready(self, workspace_id: str, info: dict[str, Any]) -> None: ...
    async def provisioning_failed(self, workspace_id: str, error: dict[str, Any]) -> None: ...


class WorkspaceManager:
    def __init__(self, config: AgentConfig, store: Store, reporter: Reporter) -> None:
        self.config = config
        self.store = store
        self.reporter = reporter
        self.root = config.state_dir / WORKSPACES_DIRNAME
        self.backend: Backend = choose_backend(config)
        self._logs: dict[str, BootLog] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._closing = False

    # --- queries ----------------------------------------------------------------------------

    def get(self, workspace_id: str) -> dict[str, Any]:
        record = self.store.workspace(workspace_id)
        if record is None:
            raise WorkspaceNotFound(f"no workspace {workspace_id} on this node")
        return {**record, "backend": self.backend.name}

    def list(self) -> list[dict[str, Any]]:
        return [{**record, "backend": self.backend.name} for record in self.store.workspaces()]

    def boot_log(self, workspace_id: str) -> BootLog:
        self.get(workspace_id)
        return self._log(workspace_id)

    def active_count(self) -> int:
        return sum(1 for record in self.store.workspaces() if record["state"] in ACTIVE_STATES)

    async def shell_command(self, workspace_id: str) -> ShellCommand:
        record = self.get(workspace_id)
        if record["state"] != S.RUNNING:
            raise WorkspaceNotRunning(
                f"workspace {workspace_id} is {record['state']}; restart it to open a terminal"
            )
        return self.backend.shell_command(record)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Reload workspaces from the Store and reconcile them with what really runs."""
        await self.backend.prepare()
        self.root.mkdir(parents=True, exist_ok=True)
        for record in self.store.workspaces():
            self._log(record["id"]).finish()
            observed = await self.backend.observe(record)
            state, error = _reconciled(record, observed)
            updates: dict[str, Any] = {"id": record["id"], "state": state, "error": error}
            if observed.container_id:
                updates["container_id"] = observed.container_id
            self.store.save_workspace(updates)
            log.info(
                "workspace.reconciled id=%s was=%s now=%s observed=%s",
                record["id"],
                record["state"],
                state,
                observed.status,
            )

    async def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Validate, record and return at once; clone and bring up in the background."""
        workspace_id = spec.get("id")
        if not isinstance(workspace_id, str) or not WORKSPACE_ID_PATTERN.match(workspace_id):
            raise InvalidWorkspaceSpec("id", "must be 1-63 letters, digits or '-'")
        source = validate_repository(spec.get("repository"))
        branch = validate_branch(spec.get("branch"))
        if self.store.workspace(workspace_id) is not None:
            raise WorkspaceExists(f"workspace {workspace_id} already exists on this node")
        directory = self.root / workspace_id
        self.store.save_workspace(
            {
                "id": workspace_id,
                "repository": source.value,
                "branch": branch,
                "state": S.PENDING,
                "directory": str(directory / source.name),
            }
        )
        self._launch(workspace_id, self._provision(workspace_id, source, branch, "create"))
        return self.get(workspace_id)

    async def stop(self, workspace_id: str) -> dict[str, Any]:
        record = self.get(workspace_id)
        if record["state"] != S.STOPPED:  # refuse at once rather than wait for the lock
            check_transition(workspace_id, record["state"], S.STOPPING)
        async with self._lock(workspace_id):
            record = self.get(workspace_id)
            if record["state"] == S.STOPPED:
                return record
            self._transition(workspace_id, S.STOPPING)
            try:
                await self.backend.stop(record)
            except ProvisioningError as exc:
                self._transition(workspace_id, S.ERROR, error=_explain(exc))
                raise
            self._transition(workspace_id, S.STOPPED)
            return self.get(workspace_id)

    async def restart(self, workspace_id: str) -> dict[str, Any]:
        """Start the stopped container again (bring it up anew when it is gone)."""
        return await self._relaunch(workspace_id, "restart")

    async def rebuild(self, workspace_id: str) -> dict[str, Any]:
        """Remove the container and run `devcontainer up` again on the same checkout."""
        return await self._relaunch(workspace_id, "rebuild")

    async def delete(self, workspace_id: str) -> None:
        record = self.get(workspace_id)
        task = self._tasks.pop(workspace_id, None)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        async with self._lock(workspace_id):
            await self.backend.remove(record)
            directory = self.root / workspace_id
            await asyncio.to_thread(shutil.rmtree, directory, ignore_errors=True)
            self.store.delete_workspace(workspace_id)
            self._logs.pop(workspace_id, BootLog(workspace_id)).finish()
            self._locks.pop(workspace_id, None)
        log.info("workspace.deleted id=%s", workspace_id)

    async def close(self) -> None:
        self._closing = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.backend.close()

    # --- provisioning -----------------------------------------------------------------------

    async def _relaunch(self, workspace_id: str, mode: Mode) -> dict[str, Any]:
        record = self.get(workspace_id)
        if workspace_id in self._tasks:
            raise InvalidTransition(f"workspace {workspace_id} is already being provisioned")
        if mode == "restart" and record["state"] == S.RUNNING:
            raise InvalidTransition(f"workspace {workspace_id} is already running")
        if (Path(record["directory"]) / ".git").exists():
            kind = "local" if record["repository"].startswith("/") else "url"
            source = RepositorySource(record["repository"], kind)
        else:  # cloned again: check again, a local repository may have gone meanwhile
            source = validate_repository(record["repository"])
        self._transition(workspace_id, S.CREATING)
        work = self._provision(workspace_id, source, record["branch"], mode)
        self._launch(workspace_id, work)
        return self.get(workspace_id)

    def _launch(self, workspace_id: str, work: Any) -> None:
        log_ = self._log(workspace_id)
        log_.open()
        task = asyncio.create_task(work, name=f"provision-{workspace_id}")
        self._tasks[workspace_id] = task

    async def _provision(
        self, workspace_id: str, source: RepositorySource, branch: str | None, mode: Mode
    ) -> None:
        boot = self._log(workspace_id)
        started = time.monotonic()
        try:
            async with self._lock(workspace_id):
                record = self.get(workspace_id)
                if record["state"] != S.CREATING:  # a restart or rebuild is there already
                    self._transition(workspace_id, S.CREATING)
                checkout = Path(record["directory"])
                if not (checkout / ".git").exists():
                    await self._clone(boot, source, branch, checkout)
                result = await self.backend.up(record, checkout, boot, mode)
                self._transition(workspace_id, S.RUNNING, error=None, **result)
                seconds = time.monotonic() - started
                await boot.add("ready", StepStatus.SUCCEEDED, f"workspace ready in {seconds:.1f} s")
                ready = self.get(workspace_id)
            await self.reporter.workspace_ready(workspace_id, _ready_info(ready))
        except ProvisioningError as exc:
            await self._fail(workspace_id, boot, exc)
        except asyncio.CancelledError:
            if self._closing:
                self._transition(workspace_id, S.ERROR, error=INTERRUPTED)
            raise
        except Exception as exc:  # the background task's error boundary: never lose a failure
            log.exception("workspace.provision_crashed id=%s", workspace_id)
            failure = ProvisioningError(
                f"internal error: {exc!r}", step="internal", hint="see the agent's log"
            )
            await self._fail(workspace_id, boot, failure)
        finally:
            # Before finish(): whoever follows the boot log may act on the workspace next.
            if self._tasks.get(workspace_id) is asyncio.current_task():
                del self._tasks[workspace_id]
            boot.finish()

    async def _clone(
        self, boot: BootLog, source: RepositorySource, branch: str | None, checkout: Path
    ) -> None:
        what = source.display + (f" (branch {branch})" if branch else "")
        await boot.add("clone", StepStatus.STARTED, f"cloning {what}")
        began = time.monotonic()
        checkout.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.rmtree, checkout, ignore_errors=True)
        await clone(source, branch, checkout)
        seconds = time.monotonic() - began
        await boot.add(
            "clone", StepStatus.SUCCEEDED, f"cloned into {checkout.name} in {seconds:.1f} s"
        )

    async def _fail(self, workspace_id: str, boot: BootLog, exc: ProvisioningError) -> None:
        log.warning(
            "workspace.failed id=%s step=%s message=%s", workspace_id, exc.step, exc.message
        )
        await boot.add(exc.step, StepStatus.FAILED, _explain(exc), detail=exc.detail)
        if self.store.workspace(workspace_id) is None:
            return  # deleted meanwhile
        self._transition(workspace_id, S.ERROR, error=_explain(exc))
        failure = {"step": exc.step, "message": exc.message, "detail": exc.detail, "hint": exc.hint}
        await self.reporter.provisioning_failed(workspace_id, failure)

    # --- helpers ----------------------------------------------------------------------------

    def _transition(self, workspace_id: str, target: WorkspaceState, **updates: Any) -> None:
        record = self.get(workspace_id)
        check_transition(workspace_id, record["state"], target)
        self.store.save_workspace({**updates, "id": workspace_id, "state": target})
        log.info("workspace.state id=%s from=%s to=%s", workspace_id, record["state"], target)

    def _log(self, workspace_id: str) -> BootLog:
        if workspace_id not in self._logs:
            self._logs[workspace_id] = BootLog(workspace_id, self.reporter)
        return self._logs[workspace_id]

    def _lock(self, workspace_id: str) -> asyncio.Lock:
        return self._locks.setdefault(workspace_id, asyncio.Lock())


def _explain(exc: ProvisioningError) -> str:
    return f"{exc.message}. Next: {exc.hint}"


def _ready_info(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("state", "container_id", "remote_user", "remote_folder", "backend")
    return {key: record.get(key) for key in keys}


def _reconciled(record: dict[str, Any], observed: Observed) -> tuple[str, str | None]:
    """The state a workspace is in after an agent restart, from what the backend sees."""
    stored = record["state"]
    if observed.status == "unknown":
        return S.ERROR, observed.message
    if stored in (S.PENDING, S.CREATING):
        ready = observed.status == "running" and record.get("remote_user")
        return (S.RUNNING, None) if ready else (S.ERROR, INTERRUPTED)
    if stored == S.ERROR:
        return S.ERROR, record.get("error")
    if observed.status == "running":
        return S.RUNNING, None
    if observed.status == "stopped":
        return S.STOPPED, None
    return S.ERROR, observed.message


# --- backends: where a workspace runs, chosen once ------------------------------------------

Mode = Literal["create", "restart", "rebuild"]
TERM = "xterm-256color"
# The base image's user (scripts/build-image) and the usual first non-root uid of other
# devcontainer images: the checkout belongs to it before `devcontainer up`, so that
# postCreateCommand can write to the workspace.
CONTAINER_UID = 1000
CONTAINER_GID = 1000
DEVCONTAINER_CONFIGS = (Path(".devcontainer") / "devcontainer.json", Path(".devcontainer.json"))
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
    async def observe(self, record: dict[str, Any]) -> Observed: ...
    async def up(
        self, record: dict[str, Any], checkout: Path, boot: BootLog, mode: Mode
    ) -> dict[str, Any]: ...
    async def stop(self, record: dict[str, Any]) -> None: ...
    async def remove(self, record: dict[str, Any]) -> None: ...
    def shell_command(self, record: dict[str, Any]) -> ShellCommand: ...
    def close(self) -> None: ...


def choose_backend(config: AgentConfig) -> Backend:
    if config.backend == "host":
        return HostBackend(config)
    return DockerBackend(config)


class DockerBackend:
    """A devcontainer per workspace, on the Docker Engine, found by its labels."""

    name = "docker"

    def __init__(self, config: AgentConfig, engine: DockerEngine | None = None) -> None:
        self.config = config
        self.engine = engine or DockerEngine()
        self._cli: DevcontainerCLI | None = None

    async def prepare(self) -> None:
        try:
            await self.engine.ping()
        except ContainerError as exc:
            log.error("workspaces.docker_unavailable message=%s hint=%s", exc.message, exc.hint)

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
        elif mode == "restart" and existing and record.get("remote_user"):
            container = existing[0]
            await boot.add("start container", StepStatus.STARTED, f"starting {container.id[:12]}")
            await self.engine.start(container.id)
            await boot.add("start container", StepStatus.SUCCEEDED, "container started")
            await self._settle_ownership(container.id, record["remote_user"], checkout)
            return {"container_id": container.id}
        override = await self._configure(record, checkout, boot)
        result = await self._up(checkout, labels, override, boot)
        await self._settle_ownership(result["container_id"], result["remote_user"], checkout)
        return result

    async def stop(self, record: dict[str, Any]) -> None:
        for container in await self.engine.find(self._labels(record)):
            if container.running:
                await self.engine.stop(container.id)

    async def remove(self, record: dict[str, Any]) -> None:
        for container in await self.engine.find(self._labels(record)):
            await self.engine.remove(container.id)

    def shell_command(self, record: dict[str, Any]) -> ShellCommand:
        argv = ["docker", "exec", "-it", "-u", record["remote_user"]]
        argv += ["-w", record["remote_folder"], "-e", f"TERM={TERM}"]
        return ShellCommand([*argv, record["container_id"], "bash", "-l"], {"TERM": TERM})

    def close(self) -> None:
        self.engine.close()

    def _labels(self, record: dict[str, Any]) -> dict[str, str]:
        return workspace_labels(record["id"], self.config.node_id)

    async def _configure(
        self, record: dict[str, Any], checkout: Path, boot: BootLog
    ) -> Path | None:
        """The repository's devcontainer.json, or a default one written outside the checkout
        (so the user's tree stays clean); returns the override to pass, if any."""
        own = next((path for path in DEVCONTAINER_CONFIGS if (checkout / path).is_file()), None)
        override = None
        if own is not None:
            message = f"using the repository's {own}"
        else:
            override = checkout.parent / DEFAULT_CONFIG_DIRNAME / "devcontainer.json"
            override.parent.mkdir(parents=True, exist_ok=True)
            default = {
                "name": record["id"],
                "image": self.config.base_image,
                "runArgs": ["--network", "host"],
            }
            override.write_text(json.dumps(default, indent=2) + "\n")
            message = f"no devcontainer.json in the repository: default on {default['image']}"
        if os.geteuid() == 0:
            await asyncio.to_thread(_chown_tree, checkout, CONTAINER_UID, CONTAINER_GID)
        await boot.add("devcontainer config", StepStatus.SUCCEEDED, message)
        return override

    async def _up(
        self, checkout: Path, labels: dict[str, str], override: Path | None, boot: BootLog
    ) -> dict[str, Any]:
        if self._cli is None:
            self._cli = DevcontainerCLI()
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
            up, command = await self._cli.up(
                checkout, labels, override_config=override, on_log_line=on_line
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

    async def observe(self, record: dict[str, Any]) -> Observed:
        if not Path(record["directory"]).is_dir():
            return Observed("gone", None, "the workspace directory is gone; rebuild it")
        return Observed("stopped" if record["state"] == WorkspaceState.STOPPED else "running")

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
