"""The node agent's HTTP API (docs/protocols/agent-api.md): its bodies, declared once.

The agent (agent/routes.py) validates what it receives and what it answers against these
models, and the control plane's client (worker/workspaces/agent_client.py) sends and reads
the same ones, so neither side can drift. Golden files in tests/golden/agent_api/ pin the
JSON of each.

    GET    /health                        → Health
    POST   /workspaces          NewWorkspace → 202 AgentWorkspace
    GET    /workspaces                    → WorkspaceList
    GET    /workspaces/{id}               → AgentWorkspace
    POST   /workspaces/{id}/stop          → AgentWorkspace (stopped)
    POST   /workspaces/{id}/restart       → 202 AgentWorkspace (creating)
    POST   /workspaces/{id}/rebuild       → 202 AgentWorkspace (creating)
    DELETE /workspaces/{id}               → Deleted
    GET    /workspaces/{id}/boot-log      → BootLog (BootLogEntry each, also on boot-log/ws)
    GET    /workspaces/{id}/terminals     → TerminalTabs
    any failure                           → ErrorBody

Replies ignore fields they do not know (an agent may be newer than the control plane
reading it); a request refuses them.
"""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from wire.states import LifecycleState
from wire.terminal import SessionInfo

MAX_FIELD_CHARS = 4096
MAX_CALLBACK_TEXT_CHARS = 64 * 1024
Text = Annotated[str, Field(max_length=MAX_FIELD_CHARS)]
CallbackText = Annotated[str, Field(max_length=MAX_CALLBACK_TEXT_CHARS)]


class StepStatus(StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class _Reply(BaseModel):
    model_config = ConfigDict(frozen=True)


class Health(_Reply):
    status: Literal["ok"] = "ok"
    node_id: str
    agent_version: str


class NewWorkspace(BaseModel):
    """The body of POST /workspaces; the agent checks the values (id, repository, branch)."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    id: str
    repository: str
    branch: str | None = None
    # The node's owner trusts this repository's devcontainer.json: every property is
    # honoured (host mounts, initializeCommand on the node, privileged, host networking…)
    # instead of the allowlist of agent/workspaces/policy.py.
    trusted_devcontainer: bool = False


class AgentWorkspace(_Reply):
    """A workspace as the agent has it."""

    id: str
    repository: str
    branch: str | None
    state: LifecycleState
    container_id: str | None
    remote_user: str | None
    remote_folder: str | None
    # devcontainer.json's remoteEnv as the CLI resolved it; terminal shells get it on top
    # of the container's environment.
    remote_env: dict[str, str] | None
    directory: str | None
    error: str | None
    trusted_devcontainer: bool = False
    created_at: str
    updated_at: str
    backend: str  # "docker", or "host" (not isolated)


class WorkspaceList(_Reply):
    workspaces: list[AgentWorkspace]


class Deleted(_Reply):
    id: str
    deleted: Literal[True] = True


class BootLogEntry(_Reply):
    """One step of a workspace's bring-up; also the body of the boot-log callback."""

    step: Text
    status: StepStatus
    message: CallbackText = ""
    detail: CallbackText | None = None
    timestamp: Text | None = None  # ISO-8601 UTC; the agent always sends it


class BootLog(_Reply):
    entries: list[BootLogEntry]


class TerminalTabs(_Reply):
    tabs: list[SessionInfo]


class RevokeGrant(BaseModel):
    """`POST /grants/revoke`: the session or API token a user's terminal tokens name
    (`session:<sha256>` / `token:<sha256>`) has been signed out or revoked."""

    model_config = ConfigDict(extra="forbid")

    grant: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[a-z]+:[0-9a-f]{64}$")]


class GrantRevoked(_Reply):
    closed: int  # sockets it had opened here, now closed


class ErrorBody(_Reply):
    error: str
    message: str
