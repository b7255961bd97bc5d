"""The host's side of the sandbox: nftables rules for every workspace bridge (`samw*`).

A workspace's container joins only its own bridge network, but a bridge still reaches the
host: every address of the host (the gateway, eth0's, a VM's public one) answers on its
INPUT path, where the node agent (0.0.0.0:8080 on a VM), the local edge and anything else
listening may be. Binding choices alone cannot close that (a VM's agent must listen on its
public address), so a root agent installs one table, `inet sam_workspaces`:

    input    from a workspace bridge: only to (its own bridge, its gateway, its channel
             port) — the set `channels`, one element per open channel — and the answers
             to connections this host opened; everything else from a bridge to this host
             is dropped (IPv6 link-local included)
    forward  workspace → another workspace: dropped; workspace → 169.254.0.0/16 (the cloud
             metadata service, which serves the VM's user_data): dropped; new connections
             into a workspace from anywhere: dropped; the rest (its own traffic out to the
             internet, NATed by the Docker Engine) is left alone

The rules are generic (they match the bridge name prefix), installed atomically at start;
several agents on one host share the table and only add or remove their own elements.
Without root (a developer's agent) nothing is installed: the agent then says so, and the
local agent and edge listen on loopback, which a bridge never reaches.
"""

from __future__ import annotations

import logging
import os
import shutil

from agent.errors import ContainerError
from agent.process import child_env, run_command, stderr_tail

log = logging.getLogger("agent.workspaces.firewall")

TABLE = "sam_workspaces"
BRIDGE_PREFIX = "samw"
NFT_TIMEOUT_SECONDS = 30.0
METADATA_RANGE = "169.254.0.0/16"
NOT_ROOT = (
    "the agent is not root, so no sandbox firewall: a workspace can reach services on "
    "this machine's non-loopback addresses. Keep them on 127.0.0.1, or run the agent as root"
)

RULESET = f"""
add table inet {TABLE}
add set inet {TABLE} channels {{ type ifname . ipv4_addr . inet_service; }}
add chain inet {TABLE} input {{ type filter hook input priority filter - 10; policy accept; }}
add chain inet {TABLE} forward {{ type filter hook forward priority filter - 10; policy accept; }}
flush chain inet {TABLE} input
flush chain inet {TABLE} forward
add rule inet {TABLE} input iifname "{BRIDGE_PREFIX}*" ct state established,related accept
add rule inet {TABLE} input iifname . ip daddr . tcp dport @channels accept
add rule inet {TABLE} input iifname "{BRIDGE_PREFIX}*" drop
add rule inet {TABLE} forward iifname "{BRIDGE_PREFIX}*" oifname "{BRIDGE_PREFIX}*" drop
add rule inet {TABLE} forward iifname "{BRIDGE_PREFIX}*" ip daddr {METADATA_RANGE} drop
add rule inet {TABLE} forward oifname "{BRIDGE_PREFIX}*" ct state established,related accept
add rule inet {TABLE} forward oifname "{BRIDGE_PREFIX}*" drop
"""


class Firewall:
    """The sandbox rules; `enabled` only for a root agent (the only one that may)."""

    def __init__(self, enabled: bool | None = None) -> None:
        self.enabled = os.geteuid() == 0 if enabled is None else enabled
        self._installed = False

    async def install(self) -> None:
        """Put the table in place (idempotent, atomic: no moment without the drops)."""
        if not self.enabled or self._installed:
            return
        await _nft(RULESET, "install the sandbox firewall")
        self._installed = True
        log.info("firewall.installed table=inet %s", TABLE)

    async def allow_channel(self, bridge: str, host: str, port: int) -> None:
        if not self.enabled:
            return
        await self.install()
        await _nft(f"add element {channel_element(bridge, host, port)}", "open the channel's port")

    async def revoke_channel(self, bridge: str, host: str, port: int) -> None:
        if not self.enabled:
            return
        try:
            await _nft(f"delete element {channel_element(bridge, host, port)}", "close the port")
        except ContainerError as exc:  # already gone (a table rebuilt meanwhile): fine
            log.info("firewall.revoke_skipped bridge=%s reason=%s", bridge, exc.detail)


def channel_element(bridge: str, host: str, port: int) -> str:
    assert bridge.startswith(BRIDGE_PREFIX) and bridge.isalnum(), bridge
    return f'inet {TABLE} channels {{ "{bridge}" . {host} . {int(port)} }}'


async def _nft(script: str, what: str) -> None:
    nft = shutil.which("nft") or "/usr/sbin/nft"
    if not os.access(nft, os.X_OK):
        raise ContainerError(
            f"could not {what}: nft is not installed",
            step="sandbox",
            hint="install nftables (apt-get install nftables); a root agent needs it to "
            "keep workspaces off this machine's services",
        )
    result = await run_command([nft, script], timeout_seconds=NFT_TIMEOUT_SECONDS, env=child_env())
    if result.returncode != 0:
        raise ContainerError(
            f"could not {what} (nft exit code {result.returncode})",
            step="sandbox",
            detail=stderr_tail(result.stderr),
            hint="check that nftables works here (`nft list ruleset`) and the agent is root",
        )
