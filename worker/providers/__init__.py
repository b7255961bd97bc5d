"""Where nodes come from: one `Provider` per kind, chosen in exactly one place.

    provider_for(name) -> Provider       "hetzner" (worker/providers/hetzner.py) or
                                         "local" (worker/providers/local.py)

A Provider (every method takes the worker's `env`):

    check_available(env)                         sync; raises an ApiError when this
                                                 deployment cannot use the provider at all
                                                 (local outside `sam dev`, Hetzner without
                                                 Cloudflare DNS settings)
    await create_server(env, node, user_id, boot) -> ProvisionedServer
        Starts a node whose agent will exchange `boot.bootstrap_token` at
        POST /api/bootstrap/{token} and then call back (ready, heartbeats). Returns at once
        with where the agent will be (`agent_host`, `agent_port`) and the provider's id;
        it does not wait for the agent. Hetzner: a VM from cloud-init (worker/cloud_init.py)
        plus its DNS record; calling it again for the same node adopts the VM already made.
    await delete_server(env, node)               the VM (and DNS record) of `node` (any
                                                 object with id, user_id, provider_server_id,
                                                 dns_record_id); already gone is fine
    await list_managed(env, user_id) -> [ManagedServer]
                                                 the user's servers carrying SAM's labels
                                                 (local: user_id None lists every user's),
                                                 for cron's orphan sweep (compare `node_id`
                                                 with D1; delete with `server.ref()`)

The nodes service calls these through worker/provisioning.py (`provision`, `release`),
which also issues the node's bootstrap token. Failures are ApiErrors with a message meant
for the node's owner (never a secret): 400 for something the user must fix (no Hetzner
token, a rejected one, an unknown size), 502/503 for the provider or DNS failing.
"""

from dataclasses import dataclass
from typing import Any, Protocol

from worker.errors import ApiError

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
    agent_port: int = 8080

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
    """What `delete_server` reads of a node (worker.node_model.Node and NodeRef have it)."""

    @property
    def id(self) -> str: ...
    @property
    def user_id(self) -> str: ...
    @property
    def provider_server_id(self) -> str | None: ...
    @property
    def dns_record_id(self) -> str | None: ...


class NodeWanted(Protocol):
    """What `create_server` reads of a node (worker.node_model.Node has it)."""

    @property
    def id(self) -> str: ...
    @property
    def size(self) -> str | None: ...
    @property
    def location(self) -> str | None: ...


class Provider(Protocol):
    name: str

    def check_available(self, env: Any) -> None: ...

    async def create_server(
        self, env: Any, node: NodeWanted, user_id: str, boot: NodeBoot
    ) -> ProvisionedServer: ...

    async def delete_server(self, env: Any, node: ServerOwner) -> None: ...

    async def list_managed(self, env: Any, user_id: str | None) -> list[ManagedServer]: ...


class UnknownProvider(ApiError):
    def __init__(self, name: str) -> None:
        super().__init__(
            400,
            "unknown_provider",
            f"There is no node provider {name!r}: use 'hetzner' or 'local'.",
        )


def provider_for(name: str) -> Provider:
    """The provider called `name` (the `nodes.provider` column)."""
    # Imported here: each provider imports this module's types.
    from worker.providers.hetzner import HetznerProvider
    from worker.providers.local import LocalProvider

    if name == "hetzner":
        return HetznerProvider()
    if name == "local":
        return LocalProvider()
    raise UnknownProvider(name)
