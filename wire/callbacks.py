"""The agent's calls to the control plane (docs/protocols/agent-api.md, "Callbacks"), declared
once: the agent validates what it sends against these models (agent/control_plane.py) and
the control plane's routes parse them (worker/api/routes/nodes.py, workspaces.py).

    POST /api/nodes/{id}/ready                   NodeReady
    POST /api/nodes/{id}/heartbeat               Heartbeat → Beat (maybe a new callback token);
                                                 its `workspaces` say how recently each was used
    POST /api/workspaces/{id}/ready              WorkspaceReady
    POST /api/workspaces/{id}/provisioning-failed  ProvisioningFailed
    POST /api/workspaces/{id}/boot-log           wire.agent_api.BootLogEntry
    GET  /api/workspaces/{id}/agent-credential   → AgentCredential (the owner's model key)

Bodies ignore fields they do not know (an agent may be newer than the control plane), except
the node's ready, which has nothing to grow. Every text is bounded: the control plane keeps
these in D1 and KV.
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

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


MAX_REPORTED_WORKSPACES = 256  # far above any node's capacity; bounds the body
MAX_VIEWERS = 100_000
MAX_IDLE_SECONDS = 10 * 365 * 24 * 3600
WORKSPACE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9-]{0,62}$"  # the agent's own rule


class WorkspaceActivity(BaseModel):
    """How recently a workspace was used, for the control plane's idle sweep
    (worker/workspaces/idle.py). Seconds, not a time of day: the agent's clock and the
    control plane's need not agree."""

    model_config = ConfigDict(extra="ignore")

    id: Annotated[str, StringConstraints(pattern=WORKSPACE_ID_PATTERN)]
    # Since the last terminal input or agent activity (a turn, a prompt); None: none since
    # the agent started.
    idle_seconds: float | None = Field(default=None, ge=0, le=MAX_IDLE_SECONDS)
    # An agent session is prompting now (busy even when it prints nothing).
    agent_busy: bool = False
    # Terminal connections and agent-session viewers open now.
    viewers: int = Field(default=0, ge=0, le=MAX_VIEWERS)

    @property
    def in_use(self) -> bool:
        return self.agent_busy or self.viewers > 0


class Heartbeat(NodeMetrics):
    agent_version: Version | None = None
    workspaces: list[WorkspaceActivity] = Field(
        default_factory=list, max_length=MAX_REPORTED_WORKSPACES
    )

    @field_validator("workspaces")
    @classmethod
    def _each_once(cls, workspaces: list[WorkspaceActivity]) -> list[WorkspaceActivity]:
        ids = [each.id for each in workspaces]
        if len(set(ids)) != len(ids):
            raise ValueError("each workspace is reported once")
        return workspaces


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


AGENT_CREDENTIAL_MISSING = "agent_credential_missing"
MAX_SECRET_CHARS = 4096
# Printable ASCII without spaces: the secret goes into an HTTP header (no CR/LF injection).
SECRET_PATTERN = r"^[\x21-\x7e]+$"


class AgentCredential(_Callback):
    """The workspace owner's key for the model API, for the agent's model proxy to inject
    (agent/channel/model_proxy.py). It lives in the agent's memory only. `base_url` None:
    the node's default upstream (SAM_MODEL_BASE_URL). A control plane without one answers
    4xx with the code AGENT_CREDENTIAL_MISSING."""

    kind: Literal["api_key", "oauth_token"]
    secret: str = Field(
        min_length=1, max_length=MAX_SECRET_CHARS, pattern=SECRET_PATTERN, repr=False
    )
    base_url: Text | None = None
