"""The types every node provider shares: what a new node is told, what a provider returns,
and the `NodeProvider` protocol that worker/nodes/providers/hetzner/ and local.py implement.
"""

from dataclasses import dataclass
from typing import Protocol

from worker.deployment import Deployment
from worker.errors import InvalidInput
from worker.nodes.model import CLOUD_AGENT_PORT

# The labels every SAM server carries (Hetzner labels; the local launcher keeps the same).
LABEL_MANAGED_BY = "managed-by"
MANAGED_BY = "sam"
LABEL_NODE = "sam-node"
LABEL_USER = "sam-user"


@dataclass(frozen=True)
class NodeBoot:
    """What a new node needs to join: no credential but the one-time bootstrap token."""

    node_id: str
    control_plane_url: str
    bootstrap_token: str = ""
    agent_port: int = CLOUD_AGENT_PORT

    def __repr__(self) -> str:  # the token stays out of logs and tracebacks
        return f"NodeBoot(node_id={self.node_id!r}, control_plane_url={self.control_plane_url!r})"


@dataclass(frozen=True)
class ProvisionedServer:
    provider_server_id: str
    ip: str
    agent_host: str  # where the control plane reaches the agent: vm-{id}.{domain}, 127.0.0.1
    agent_port: int
    location: str | None = None
    server_type: str | None = None
    dns_record_id: str | None = None


@dataclass(frozen=True)
class NodeRef:
    """The least a provider needs to delete a node's server."""

    id: str
    user_id: str
    provider_server_id: str | None = None
    dns_record_id: str | None = None


@dataclass(frozen=True)
class ManagedServer:
    """A server carrying SAM's labels, as the provider lists it."""

    provider: str
    provider_server_id: str
    node_id: str
    user_id: str
    name: str
    status: str
    ip: str | None
    created: str | None = None

    def ref(self) -> NodeRef:
        return NodeRef(self.node_id, self.user_id, self.provider_server_id)


class ServerOwner(Protocol):
    """What `delete_server` reads of a node (worker.nodes.model.Node and NodeRef have it)."""

    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def provider_server_id(self) -> str | None: ...
    @property
    def dns_record_id(self) -> str | None: ...


class NodeWanted(Protocol):
    """What `create_server` reads of a node (worker.nodes.model.Node has it)."""

    @property
    def id(self) -> str: ...
    @property
    def size(self) -> str | None: ...
    @property
    def location(self) -> str | None: ...


class NodeProvider(Protocol):
    name: str

    def check_available(self, deployment: Deployment) -> None: ...

    async def create_server(
        self, deployment: Deployment, node: NodeWanted, user_id: str, boot: NodeBoot
    ) -> ProvisionedServer: ...

    async def delete_server(self, deployment: Deployment, node: ServerOwner) -> None: ...

    async def list_managed(
        self, deployment: Deployment, user_id: str | None
    ) -> list[ManagedServer]: ...


class UnknownProvider(InvalidInput):
    def __init__(self, name: str) -> None:
        super().__init__(
            "unknown_provider",
            f"There is no node provider {name!r}: use 'hetzner' or 'local'.",
        )
