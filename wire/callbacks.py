"""The agent's calls to the control plane (docs/protocols/agent-api.md, "Callbacks"), declared
once: the agent validates what it sends against these models (agent/control_plane.py) and
the control plane's routes parse them (worker/api/routes/nodes.py, workspaces.py).

    POST /api/nodes/{id}/ready                   NodeReady
    POST /api/nodes/{id}/heartbeat               Heartbeat → Beat (maybe a new callback token)
    POST /api/workspaces/{id}/ready              WorkspaceReady
    POST /api/workspaces/{id}/provisioning-failed  ProvisioningFailed
    POST /api/workspaces/{id}/boot-log           wire.agent_api.BootLogEntry

Bodies ignore fields they do not know (an agent may be newer than the control plane), except
the node's ready, which has nothing to grow. Every text is bounded: the control plane keeps
these in D1 and KV.
"""

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from wire.agent_api import CallbackText, Text
from wire.states import LifecycleState, NodeHealth

MAX_VERSION_CHARS = 64
VERSION_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9.+_-]*$"
MAX_BYTES = 2**53  # figures travel as JSON numbers

Version = Annotated[str, StringConstraints(max_length=MAX_VERSION_CHARS, pattern=VERSION_PATTERN)]


class _Callback(BaseModel):
    model_config = ConfigDict(extra="ignore")


class NodeReady(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_port: int = Field(ge=1, le=65535)
    version: Version | None = None


class Usage(BaseModel):
    total: int = Field(ge=0, le=MAX_BYTES)
    used: int = Field(ge=0, le=MAX_BYTES)


class NodeMetrics(_Callback):
    """The node's load (bytes; disk of the agent's state directory)."""

    cpu_percent: float = Field(ge=0, le=100_000)  # psutil sums cores on some platforms
    memory: Usage
    disk: Usage
    active_workspaces: int = Field(ge=0, le=100_000)


class Heartbeat(NodeMetrics):
    agent_version: Version | None = None


class Beat(_Callback):
    """The control plane's answer to a heartbeat."""

    status: LifecycleState
    health: NodeHealth | None
    callback_token: str | None = None  # a fresh token for the agent to keep from now on


class WorkspaceReady(_Callback):
    state: Text | None = None
    container_id: Text | None = None
    remote_user: Text | None = None
    remote_folder: Text | None = None
    backend: Text | None = None


class ProvisioningFailed(_Callback):
    step: Text | None = None
    message: CallbackText | None = None
    detail: CallbackText | None = None
    hint: CallbackText | None = None
