"""Where nodes come from: one `NodeProvider` per kind, chosen in exactly one place.

    provider_for(name) -> NodeProvider   "hetzner" (hetzner/provider.py) or
                                         "local" (worker/nodes/providers/local.py)

A NodeProvider (worker/nodes/providers/base.py; every method takes the `Deployment`):

    check_available(deployment)                  sync; raises a domain error when this
                                                 deployment cannot use the provider at all
                                                 (local outside `sam dev`, Hetzner without
                                                 Cloudflare DNS settings)
    await create_server(deployment, node, user_id, boot) -> ProvisionedServer
        Starts a node whose agent will exchange `boot.bootstrap_token` at
        POST /api/bootstrap/{token} and then call back (ready, heartbeats). Returns at once
        with where the agent will be (`agent_host`, `agent_port`) and the provider's id;
        it does not wait for the agent. Hetzner: a VM from cloud-init (hetzner/cloud_init.py)
        plus its DNS record; calling it again for the same node adopts the VM already made.
    await delete_server(deployment, node)        the VM (and DNS record) of `node` (any
                                                 object with id, user_id, provider_server_id,
                                                 dns_record_id); already gone is fine
    await list_managed(deployment, user_id) -> [ManagedServer]
                                                 the user's servers carrying SAM's labels
                                                 (local: user_id None lists every user's),
                                                 for cron's orphan sweep (compare `node_id`
                                                 with D1; delete with `server.ref()`)

The nodes service calls these through worker/nodes/provisioning.py (`provision`, `release`),
which also issues the node's bootstrap token. Failures are domain errors (worker/errors.py)
with a message meant for the node's owner (never a secret): InvalidInput for something the
user must fix (no Hetzner token, a rejected one, an unknown size), UpstreamFailed or
Unavailable for the provider or DNS failing.
"""

from worker.nodes.providers.base import NodeProvider, UnknownProvider
from worker.nodes.providers.hetzner.provider import HetznerProvider
from worker.nodes.providers.local import LocalProvider


def provider_for(name: str) -> NodeProvider:
    """The provider called `name` (the `nodes.provider` column)."""
    if name == "hetzner":
        return HetznerProvider()
    if name == "local":
        return LocalProvider()
    raise UnknownProvider(name)
