"""A workspace's sandbox on the Docker backend: its own network, its firewall rules, its
channel, and what the container may not keep.

Each workspace gets a bridge network of its own (labelled as SAM's with the workspace and
node ids, so a restarted agent or daemon finds it again; removed with the workspace); its
container joins only that network: no host networking, so it neither sees the node's
traffic nor reaches services on the host's loopback, and the firewall (firewall.py) closes
the host's other addresses and the other workspaces to it. SAM's channel (agent/channel/)
listens on the network's gateway, the one host address the workspace may reach.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from agent.channel import Channels, WorkspaceChannel
from agent.workspaces.containers import DockerEngine, NetworkInfo, workspace_labels
from agent.workspaces.firewall import BRIDGE_PREFIX, Firewall

log = logging.getLogger("agent.workspaces.sandbox")

NETWORK_PREFIX = "sam-ws-"
# Capabilities Docker grants by default that a dev container does not need:
#   NET_RAW  raw and packet sockets: sniffing the network and forging packets (ping works
#            without it: Debian's ping uses ICMP datagram sockets)
#   MKNOD    creating device nodes: no devcontainer workflow makes devices
# Kept: CHOWN, DAC_OVERRIDE, FOWNER, FSETID, SETUID, SETGID (sudo, package installs),
# SETPCAP, SETFCAP (dpkg sets file capabilities), KILL, NET_BIND_SERVICE (dev servers on
# :80), SYS_CHROOT (build tools), AUDIT_WRITE (sudo complains on every call without it).
DROPPED_CAPABILITIES = ("NET_RAW", "MKNOD")


@dataclass(frozen=True)
class Sandbox:
    network: NetworkInfo
    channel: WorkspaceChannel | None

    def run_args(self) -> list[str]:
        """What SAM adds to `docker run`, outside the repository's reach."""
        args = ["--network", self.network.name]
        for capability in DROPPED_CAPABILITIES:
            args += ["--cap-drop", capability]
        return args


def network_names(node_id: str, workspace_id: str) -> tuple[str, str]:
    """The network's name and its bridge interface's (at most 15 characters), unique per
    node and workspace: several agents may share one Docker Engine."""
    digest = hashlib.sha256(f"{node_id}/{workspace_id}".encode()).hexdigest()
    return f"{NETWORK_PREFIX}{digest[:16]}", f"{BRIDGE_PREFIX}{digest[:11]}"


class Sandboxes:
    def __init__(
        self, engine: DockerEngine, node_id: str, channels: Channels | None, firewall: Firewall
    ) -> None:
        self.engine = engine
        self.node_id = node_id
        self.channels = channels
        self.firewall = firewall

    async def ensure(self, workspace_id: str) -> Sandbox:
        """The workspace's network (found again, or made), its rules and its channel."""
        await self.firewall.install()
        network = await self._network(workspace_id, create=True)
        assert network is not None
        channel = None
        if self.channels is not None:
            channel = await self.channels.open(
                workspace_id, host=network.gateway, subnet=network.subnet
            )
            await self.firewall.allow_channel(network.bridge, channel.host, channel.port)
        return Sandbox(network, channel)

    async def resume(self, workspace_id: str) -> None:
        """After an agent restart: open the channel of a workspace whose network is there."""
        if await self._network(workspace_id, create=False) is not None:
            await self.ensure(workspace_id)

    async def remove(self, workspace_id: str) -> None:
        """After its container: the channel (its token forgotten), the rule, the network."""
        channel = self.channels.get(workspace_id) if self.channels else None
        network = await self._network(workspace_id, create=False)
        if self.channels is not None:
            await self.channels.close(workspace_id)
        if network is not None:
            if channel is not None:
                await self.firewall.revoke_channel(network.bridge, channel.host, channel.port)
            await self.engine.remove_network(network.id)

    async def _network(self, workspace_id: str, *, create: bool) -> NetworkInfo | None:
        labels = workspace_labels(workspace_id, self.node_id)
        found = await self.engine.find_networks(labels)
        if found or not create:
            return found[0] if found else None
        name, bridge = network_names(self.node_id, workspace_id)
        network = await self.engine.create_network(name, bridge, labels)
        log.info(
            "sandbox.network_created workspace_id=%s network=%s subnet=%s",
            workspace_id,
            name,
            network.subnet,
        )
        return network
