"""What a workspace is: the `Workspace` record, its id, and where its owner finds it.

Kept apart from worker/workspaces/service.py so that the proxy, the routes, the cron sweep and the
dispatcher can name a workspace without importing the service that places it.
"""

import re
from dataclasses import dataclass
from typing import Any

from worker.auth.scoped_tokens import control_plane_url
from worker.config import Config
from worker.ids import ID_HEX_CHARS, new_id

# Ids become host names (`ws-{id}.{domain}`, worker/edge/hosts.py WORKSPACE_ID) and the agent's
# directory and label names (its WORKSPACE_ID_PATTERN): `w` + lowercase hex digits, 32 for
# new ids (worker/ids.py), 12 for those made before.
WORKSPACE_ID_PREFIX = "w"
WORKSPACE_ID = re.compile(rf"^w(?:[0-9a-f]{{{ID_HEX_CHARS}}}|[0-9a-f]{{12}})$")
# How often a browser should poll GET .../boot-log while the node is not up yet (it cannot
# follow the agent's live stream until then).
BOOT_LOG_POLL_SECONDS = 2

COLUMNS = """id, user_id, node_id, name, repository, branch, status, error_message, provider,
    size, provisioning_since, dispatched_at, ready_at, container_id, remote_user,
    remote_folder, backend, trusted_devcontainer, last_active_at, in_use, stopped_reason,
    wip_branch, needs_attention, created_at, updated_at"""


def new_workspace_id() -> str:
    return new_id(WORKSPACE_ID_PREFIX)


@dataclass(frozen=True)
class Workspace:
    id: str
    user_id: str
    node_id: str | None
    name: str
    repository: str
    branch: str | None
    status: str
    error_message: str | None
    provider: str
    size: str | None
    provisioning_since: str | None
    dispatched_at: str | None
    ready_at: str | None
    container_id: str | None
    remote_user: str | None
    remote_folder: str | None
    backend: str | None
    # The owner trusts the repository's devcontainer.json: the agent skips its policy.
    trusted_devcontainer: bool
    # Idle (worker/workspaces/idle.py): last use as the node's heartbeat reported it, in
    # use at that beat, why SAM stopped it, the branch holding work SAM saved, and why it
    # was left running for its owner to decide.
    last_active_at: str | None
    in_use: bool
    stopped_reason: str | None
    wip_branch: str | None
    needs_attention: str | None
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Any) -> "Workspace":
        """From a row of exactly COLUMNS (a column more or less is a TypeError).

        Fills the fields directly: a frozen dataclass's __init__ makes one
        object.__setattr__ call per field, about 10 us a row, and a listing reads many.
        """
        if row.keys() != _FIELDS:
            raise TypeError(f"a workspace row has {sorted(row.keys())}, not {sorted(_FIELDS)}")
        workspace = object.__new__(cls)
        workspace.__dict__.update(row)
        workspace.__dict__["trusted_devcontainer"] = bool(row["trusted_devcontainer"])
        workspace.__dict__["in_use"] = bool(row["in_use"])
        return workspace

    @property
    def on_agent(self) -> bool:
        """The node's agent has the workspace (its boot log can be followed live there)."""
        return self.dispatched_at is not None and self.status in ("creating", "running")


_FIELDS = frozenset(Workspace.__dataclass_fields__)


@dataclass(frozen=True)
class WorkspaceLinks:
    """Where the owner finds the workspaces of a deployment: worked out once per request,
    then one format per workspace (a listing shows many)."""

    api_origin: str  # https://api.{domain} (http for a localhost domain)
    ws_scheme: str  # wss, or ws beside a plain-http API
    domain: str

    @classmethod
    def of(cls, config: Config) -> "WorkspaceLinks":
        api_origin = control_plane_url(config)
        secure = api_origin.startswith("https://")
        return cls(api_origin, "wss" if secure else "ws", config.domain)

    def urls(self, workspace_id: str, live: bool) -> dict[str, str | None]:
        """`boot_log_ws` (the agent's live boot log, through the ws-{id} proxy, with
        `?token=` from POST /api/terminal/token) only once the agent has the workspace;
        before that, poll `boot_log` every BOOT_LOG_POLL_SECONDS."""
        ws_origin = f"{self.ws_scheme}://ws-{workspace_id}.{self.domain}"
        return {
            "boot_log": f"{self.api_origin}/api/workspaces/{workspace_id}/boot-log",
            "boot_log_ws": f"{ws_origin}/workspaces/{workspace_id}/boot-log/ws" if live else None,
            "terminal_ws": f"{ws_origin}/workspaces/{workspace_id}/terminal/ws",
        }


def urls(config: Config, workspace_id: str, live: bool) -> dict[str, str | None]:
    """Where the browser finds one workspace (WorkspaceLinks.urls)."""
    return WorkspaceLinks.of(config).urls(workspace_id, live)
