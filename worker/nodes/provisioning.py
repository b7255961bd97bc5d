"""The providers' side of a node's life, as the node service (worker/nodes/service.py) calls it.

    check_available(deployment, provider)      sync; the provider's domain error if this
                                               deployment cannot use it (before any row or
                                               VM is made)
    await provision(deployment, node) -> dict  issues the node's bootstrap token, has the
                                               provider start the server, and returns the
                                               `nodes` columns to store: provider_server_id,
                                               ip_address, agent_host, agent_port, location,
                                               dns_record_id
    await release(deployment, node)            the node's server and DNS record; idempotent
    await managed_servers(deployment)          every server carrying SAM's labels, of every
                                               provider and user (cron's orphan sweep); a user
                                               whose provider refuses is skipped and logged
    await delete_managed(deployment, server)   one of those, with its DNS record

`node` is a worker.nodes.model.Node (id, user_id, provider, size, location,
provider_server_id, dns_record_id).
"""

import logging
from typing import Any

from worker.auth.scoped_tokens import control_plane_url
from worker.deployment import Deployment
from worker.errors import SamError
from worker.logs import event
from worker.nodes import bootstrap
from worker.nodes.model import CLOUD_AGENT_PORT
from worker.nodes.providers import provider_for
from worker.nodes.providers.base import ManagedServer, NodeBoot

log = logging.getLogger("sam.provisioning")


def check_available(deployment: Deployment, provider: str) -> None:
    provider_for(str(provider)).check_available(deployment)


async def provision(deployment: Deployment, node: Any) -> dict[str, Any]:
    config = deployment.config
    token = await bootstrap.issue(deployment, node.id)
    boot = NodeBoot(node.id, control_plane_url(config), token, CLOUD_AGENT_PORT)
    try:
        server = await provider_for(node.provider).create_server(
            deployment, node, node.user_id, boot
        )
    except SamError:
        await bootstrap.revoke(deployment, token)  # nothing will ever exchange it
        raise
    return {
        "provider_server_id": server.provider_server_id,
        "ip_address": server.ip,
        "agent_host": server.agent_host,
        "agent_port": server.agent_port,
        "dns_record_id": server.dns_record_id,
        "location": server.location or node.location,
        "size": server.server_type or node.size,
    }


async def release(deployment: Deployment, node: Any, thorough: bool = False) -> None:
    """A node that never recorded a server is skipped unless `thorough` (right after a
    failed create, which may have left one behind): the provider then looks by label.
    A server missed here is found by cron's orphan sweep once the node's row is gone."""
    if not thorough and node.provider_server_id is None and node.dns_record_id is None:
        return
    await provider_for(node.provider).delete_server(deployment, node)


async def managed_servers(deployment: Deployment) -> list[ManagedServer]:
    found: list[ManagedServer] = []
    if getattr(deployment.env, "LOCAL_NODES", None) is not None:  # one machine: everyone's at once
        found += await _listed(deployment, "local", None)
    result = await deployment.env.DATABASE.prepare(
        "SELECT DISTINCT user_id FROM credentials WHERE kind = 'hetzner'"
    ).all()
    for row in result["results"]:
        found += await _listed(deployment, "hetzner", row["user_id"])
    return found


async def delete_managed(deployment: Deployment, server: ManagedServer) -> None:
    await provider_for(server.provider).delete_server(deployment, server.ref())


async def _listed(
    deployment: Deployment, provider: str, user_id: str | None
) -> list[ManagedServer]:
    try:
        return await provider_for(provider).list_managed(deployment, user_id)
    except SamError as exc:  # one account failing (a revoked token) spares the others
        event(log, "orphans.list_failed", provider=provider, user=user_id, error=exc.code)
        return []
