"""WorkspaceManager: workspaces on this node, their lifecycle and states.

A workspace is a clone under SAM_STATE_DIR/workspaces/<id>/ plus, on the Docker backend,
a devcontainer brought up by the real devcontainer CLI and found again by label. The
backend (agent/workspaces/backends.py) is chosen once, when the manager is built. Provisioning runs
in the background; every step lands in the workspace's boot log, and the outcome is
reported to the control plane (`workspace_ready` / `provisioning_failed`).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import re
import shutil
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Protocol

from agent.channel import Channels
from agent.channel.git_credentials import GitTokens
from agent.config import AgentConfig
from agent.errors import (
    ControlPlaneError,
    InvalidTransition,
    InvalidWorkspaceSpec,
    NoGitToken,
    ProvisioningError,
    WorkspaceExists,
    WorkspaceNotFound,
    WorkspaceNotRunning,
)
from agent.persistence import Store
from agent.shell import ShellCommand
from agent.workspaces.backends import Backend, Mode, Observed, choose_backend
from agent.workspaces.boot_log import BootLog, StepStatus
from agent.workspaces.git import TOKEN_VARIABLE, channel_git_env, config_env, credential_config
from agent.workspaces.repos import RepositorySource, clone, validate_branch, validate_repository
from wire.states import LifecycleState as WorkspaceState

log = logging.getLogger("agent.workspaces.manager")

# The same rule the control plane and the API use: it ends up in paths and labels.
WORKSPACE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$")
WORKSPACES_DIRNAME = "workspaces"
INTERRUPTED = "provisioning was interrupted by an agent restart; rebuild the workspace"


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
    def __init__(
        self,
        config: AgentConfig,
        store: Store,
        reporter: Reporter,
        channels: Channels | None = None,
        git_tokens: GitTokens | None = None,
    ) -> None:
        self.config = config
        # Read tokens for the clone of a repository on GitHub (private ones need one).
        self.git_tokens = git_tokens
        self.store = store
        self.reporter = reporter
        # SAM's channel into each workspace (agent/channel/); None on the host backend.
        self.channels = channels if config.backend == "docker" else None
        self.root = config.state_dir / WORKSPACES_DIRNAME
        self.backend: Backend = choose_backend(config, self.channels)
        self._logs: dict[str, BootLog] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._closing = False

    # --- queries ----------------------------------------------------------------------------

    def get(self, workspace_id: str) -> dict[str, Any]:
        record = self.store.workspace(workspace_id)
        if record is None:
            raise WorkspaceNotFound(f"no workspace {workspace_id} on this node")
        return _public(record, self.backend.name)

    @contextlib.asynccontextmanager
    async def checkout(self, workspace_id: str) -> AsyncIterator[Path]:
        """The workspace's checkout, held against provisioning, stop and delete meanwhile."""
        self.get(workspace_id)
        async with self._lock(workspace_id):
            record = self.get(workspace_id)
            directory = Path(record["directory"])
            if not (directory / ".git").exists():
                raise WorkspaceNotRunning(
                    f"workspace {workspace_id} has no checkout yet: wait until it is running"
                )
            yield directory

    def list(self) -> list[dict[str, Any]]:
        return [_public(record, self.backend.name) for record in self.store.workspaces()]

    def boot_log(self, workspace_id: str) -> BootLog:
        self.get(workspace_id)
        return self._log(workspace_id)

    def running_ids(self) -> list[str]:
        return [record["id"] for record in self.store.workspaces() if record["state"] == S.RUNNING]

    def active_count(self) -> int:
        return sum(1 for record in self.store.workspaces() if record["state"] in ACTIVE_STATES)

    async def shell_command(self, workspace_id: str) -> ShellCommand:
        record = self.get(workspace_id)
        if record["state"] != S.RUNNING:
            raise WorkspaceNotRunning(
                f"workspace {workspace_id} is {record['state']}; restart it to open a terminal"
            )
        command = self.backend.shell_command(record)
        # A shell's git gets the read token the way an agent session's does.
        channel = self.channels.get(workspace_id) if self.channels else None
        if channel is None:
            return command
        return dataclasses.replace(command, env={**command.env, **channel_git_env(channel)})

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
            if observed.status != "gone":
                await self.backend.resume(record)  # its network and channel, found again
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
                "trusted_devcontainer": bool(spec.get("trusted_devcontainer")),
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
        """Clone the repository afresh, remove the container and run `devcontainer up`
        (with its lifecycle commands) again."""
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
        if mode == "restart" and (Path(record["directory"]) / ".git").exists():
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
                # A rebuild fetches the repository again: the fix for a failed set-up is
                # usually a new commit, and the old checkout would only fail the same way.
                if mode == "rebuild" or not (checkout / ".git").exists():
                    await self._clone(workspace_id, boot, source, branch, checkout)
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
        self,
        workspace_id: str,
        boot: BootLog,
        source: RepositorySource,
        branch: str | None,
        checkout: Path,
    ) -> None:
        what = source.display + (f" (branch {branch})" if branch else "")
        await boot.add("clone", StepStatus.STARTED, f"cloning {what}")
        began = time.monotonic()
        checkout.parent.mkdir(parents=True, exist_ok=True)
        await asyncio.to_thread(shutil.rmtree, checkout, ignore_errors=True)
        token_env = await self._clone_token(workspace_id, source)
        await clone(source, branch, checkout, extra_env=token_env)
        seconds = time.monotonic() - began
        await boot.add(
            "clone", StepStatus.SUCCEEDED, f"cloned into {checkout.name} in {seconds:.1f} s"
        )

    async def _clone_token(self, workspace_id: str, source: RepositorySource) -> dict[str, str]:
        """The read token's git environment for a repository SAM has tokens for; none for
        any other (a public repository clones without, a private one fails and says so)."""
        if self.git_tokens is None or source.kind != "url" or "://" not in source.value:
            return {}
        try:
            token = await self.git_tokens.get(workspace_id)
        except NoGitToken:
            return {}
        except ControlPlaneError as exc:
            log.warning("clone.no_token workspace_id=%s error=%s", workspace_id, exc)
            return {}
        return config_env(credential_config(source.value)) | {TOKEN_VARIABLE: token.password}

    async def _fail(self, workspace_id: str, boot: BootLog, exc: ProvisioningError) -> None:
        log.warning(
            "workspace.failed id=%s step=%s message=%s", workspace_id, exc.step, exc.message
        )
        await boot.add(exc.step, StepStatus.FAILED, _explain(exc), detail=exc.detail)
        record = self.store.workspace(workspace_id)
        if record is None:
            return  # deleted meanwhile
        # No half-made container stays running (a failed postCreateCommand leaves one up);
        # a rebuild makes a new one.
        with contextlib.suppress(ProvisioningError):
            await self.backend.remove(record)
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


def _public(record: dict[str, Any], backend: str) -> dict[str, Any]:
    trusted = bool(record.get("trusted_devcontainer"))
    return {**record, "trusted_devcontainer": trusted, "backend": backend}


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
