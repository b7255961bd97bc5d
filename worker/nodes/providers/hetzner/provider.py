"""The `hetzner` provider: a Debian 12 VM in the user's own Hetzner Cloud project.

The user's API token comes from their stored credential (worker/auth/credentials.py). A node's
size names a minimum (SIZES); the server type is the cheapest current shared-vCPU x86 type
that meets it, read from `GET /v1/server_types` (never a hard-coded list), in the
locations `GET /v1/locations` names and the type is priced in. The node's own location,
if it asked for one, is tried first, then the others from cheapest. A location that
cannot place the server (412, `resource_unavailable`, `placement_error`) makes the next
one be tried. 429/5xx are retried inside HetznerApi.

Every server carries the labels `managed-by=sam`, `sam-node=<id>` and `sam-user=<id>`, and
is named `sam-<node id>`; names are unique in a project, so a retried create (or one
after a crash) finds the server already made and adopts it instead of leaking a second.
"""

import logging
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from worker.auth.credentials import CredentialKind, open_credential
from worker.deployment import Deployment
from worker.errors import InvalidInput, SamError, Unavailable, UpstreamFailed
from worker.http_retry import Sleep
from worker.logs import event
from worker.nodes import cloudflare_api, dns, origin_ca
from worker.nodes.providers.base import (
    LABEL_MANAGED_BY,
    LABEL_NODE,
    LABEL_USER,
    MANAGED_BY,
    ManagedServer,
    NodeBoot,
    NodeWanted,
    ProvisionedServer,
    ServerOwner,
)
from worker.nodes.providers.hetzner import cloud_init
from worker.nodes.providers.hetzner.api import HetznerApi, HetznerRefused

log = logging.getLogger("sam.hetzner")

IMAGE = "debian-12"
CPU_TYPE = "shared"
ARCHITECTURE = "x86"  # the agent artifact's wheels are for x86_64
DEFAULT_SIZE = "small"


@dataclass(frozen=True)
class SizeNeed:
    cores: int
    memory_gb: float


SIZES: dict[str, SizeNeed] = {
    "small": SizeNeed(cores=2, memory_gb=4.0),
    "medium": SizeNeed(cores=4, memory_gb=8.0),
    "large": SizeNeed(cores=8, memory_gb=16.0),
}
# Hetzner's answers for "not in this location (now)": try the next one.
FALLBACK_STATUSES = frozenset({412})
FALLBACK_CODES = frozenset({"resource_unavailable", "placement_error", "server_type_unavailable"})


@dataclass(frozen=True)
class Placement:
    server_type: str
    locations: tuple[str, ...]  # in the order to try


def server_name(node_id: str) -> str:
    return f"sam-{node_id}".lower()


def labels(node_id: str, user_id: str) -> dict[str, str]:
    return {LABEL_MANAGED_BY: MANAGED_BY, LABEL_NODE: node_id, LABEL_USER: user_id}


def choose_placement(
    server_types: list[dict[str, Any]],
    locations: list[dict[str, Any]],
    size: str | None,
    preferred_location: str | None = None,
) -> Placement:
    """The cheapest type that fits `size`, and where to try it (400 if none fits)."""
    name = size or DEFAULT_SIZE
    need = SIZES.get(name)
    if need is None:
        raise InvalidInput(
            "unknown_size", f"There is no node size {name!r}: use one of {sorted(SIZES)}."
        )
    known = [location["name"] for location in locations]
    best: tuple[Decimal, int, float, str, tuple[str, ...]] | None = None
    for kind in server_types:
        if (
            kind.get("deprecated")
            or kind.get("deprecation")
            or kind.get("cpu_type") != CPU_TYPE
            or kind.get("architecture", ARCHITECTURE) != ARCHITECTURE
            or kind.get("cores", 0) < need.cores
            or kind.get("memory", 0) < need.memory_gb
        ):
            continue
        prices = _monthly_prices(kind, set(known))
        if not prices:
            continue
        # Cheapest location first; the API's own order breaks ties.
        order = tuple(sorted(prices, key=lambda loc: (prices[loc], known.index(loc))))
        candidate = (min(prices.values()), kind["cores"], kind["memory"], kind["name"], order)
        if best is None or candidate[:3] < best[:3]:
            best = candidate
    if best is None:
        raise InvalidInput(
            "no_server_type",
            f"Hetzner Cloud offers no current shared-vCPU x86 server type with at least "
            f"{need.cores} vCPUs and {need.memory_gb:g} GB memory (size {name!r}) in any "
            "location. Try a smaller size.",
        )
    order = best[4]
    if preferred_location in order:
        order = (preferred_location, *(loc for loc in order if loc != preferred_location))
    return Placement(best[3], order)


def _monthly_prices(kind: dict[str, Any], known: set[str]) -> dict[str, Decimal]:
    """Location → net monthly price, where the type is offered (and not being withdrawn)."""
    withdrawn = {
        entry.get("name")
        for entry in kind.get("locations") or []
        if isinstance(entry, dict) and entry.get("deprecation")
    }
    offered = {
        entry.get("name") for entry in kind.get("locations") or [] if isinstance(entry, dict)
    }
    prices: dict[str, Decimal] = {}
    for price in kind.get("prices") or []:
        location = price.get("location")
        if location not in known or location in withdrawn or (offered and location not in offered):
            continue
        try:
            prices[location] = Decimal(str(price["price_monthly"]["net"]))
        except (KeyError, TypeError, InvalidOperation):
            continue
    return prices


def _ipv4(server: dict[str, Any]) -> str | None:
    return (((server.get("public_net") or {}).get("ipv4")) or {}).get("ip")


def _managed(server: dict[str, Any]) -> ManagedServer:
    tags = server.get("labels") or {}
    return ManagedServer(
        provider="hetzner",
        provider_server_id=str(server["id"]),
        node_id=tags.get(LABEL_NODE, ""),
        user_id=tags.get(LABEL_USER, ""),
        name=server.get("name", ""),
        status=server.get("status", "unknown"),
        ip=_ipv4(server),
        created=server.get("created"),
    )


class HetznerProvider:
    name = "hetzner"

    def __init__(self, sleep: Sleep | None = None) -> None:
        self._sleep = sleep  # tests inject it; None is asyncio.sleep

    def check_available(self, deployment: Deployment) -> None:
        cloudflare_api.zone_id(deployment.config)  # CloudflareNotConfigured without it

    async def _api(self, deployment: Deployment, user_id: str) -> HetznerApi:
        token = await open_credential(deployment, user_id, CredentialKind.HETZNER)
        return HetznerApi(deployment.config.hetzner_api_url, token, self._sleep)

    async def create_server(
        self, deployment: Deployment, node: NodeWanted, user_id: str, boot: NodeBoot
    ) -> ProvisionedServer:
        self.check_available(deployment)  # before a VM exists that could not be reached
        config = deployment.config
        api = await self._api(deployment, user_id)
        server = await _find_one(api, node.id)
        if server is None:
            types = await api.paged("/server_types", "server_types")
            locations = await api.paged("/locations", "locations")
            placement = choose_placement(types, locations, node.size, node.location)
            server = await self._create(api, node.id, user_id, placement, cloud_init.render(boot))
        else:
            event(log, "hetzner.adopted", node_id=node.id, server=server["id"])
        ip = _ipv4(server)
        server_id = str(server["id"])
        if ip is None:
            await _delete(api, server_id)
            raise UpstreamFailed(
                "hetzner_no_ip", "Hetzner Cloud made the server without a public IPv4."
            )
        host = dns.vm_hostname(config, node.id)
        try:
            record = await dns.ensure_a_record(config, host, ip)
        except SamError:
            # Unreachable without its name: take the VM back rather than pay for it.
            await _delete(api, server_id)
            raise
        return ProvisionedServer(
            provider_server_id=server_id,
            ip=ip,
            agent_host=host,
            agent_port=boot.agent_port,
            location=((server.get("datacenter") or {}).get("location") or {}).get("name"),
            server_type=(server.get("server_type") or {}).get("name"),
            dns_record_id=record.id,
        )

    async def _create(
        self, api: HetznerApi, node_id: str, user_id: str, placement: Placement, user_data: str
    ) -> dict[str, Any]:
        tried: list[str] = []
        for location in placement.locations:
            body = {
                "name": server_name(node_id),
                "server_type": placement.server_type,
                "image": IMAGE,
                "location": location,
                "user_data": user_data,
                "labels": labels(node_id, user_id),
                "start_after_create": True,
                "public_net": {"enable_ipv4": True, "enable_ipv6": True},
            }
            try:
                answer = await api.call("POST", "/servers", body=body)
            except HetznerRefused as refused:
                if (
                    refused.hetzner_status in FALLBACK_STATUSES
                    or refused.hetzner_code in FALLBACK_CODES
                ):
                    tried.append(f"{location} ({refused.hetzner_code})")
                    event(
                        log,
                        "hetzner.location_refused",
                        node_id=node_id,
                        location=location,
                        code=refused.hetzner_code,
                    )
                    continue
                if refused.hetzner_code == "uniqueness_error":
                    found = await _find_one(api, node_id)
                    if found is not None:  # an earlier attempt made it after all
                        return found
                raise
            event(
                log,
                "hetzner.created",
                node_id=node_id,
                server=answer["server"]["id"],
                location=location,
                server_type=placement.server_type,
            )
            return answer["server"]
        raise Unavailable(
            "hetzner_no_capacity",
            f"No Hetzner location could place a {placement.server_type} server right now "
            f"(tried {', '.join(tried)}). Try again later, or choose another size.",
        )

    async def delete_server(self, deployment: Deployment, node: ServerOwner) -> None:
        config = deployment.config
        api = await self._api(deployment, node.user_id)
        ids = {node.provider_server_id} if node.provider_server_id else set()
        # Also any made for this node but never recorded (a crash mid-create).
        ids |= {str(server["id"]) for server in await _find_all(api, node.id)}
        for server_id in sorted(ids):
            await _delete(api, server_id)
        if cloudflare_api.is_configured(config):
            host = dns.vm_hostname(config, node.id)
            await dns.delete_records(config, host, node.dns_record_id)
            try:
                await origin_ca.revoke_for(config, host)
            except cloudflare_api.CloudflareError as exc:
                # The key died with the VM, so a certificate left behind vouches for no one:
                # say so, but never keep a node (and its bill) alive over it.
                event(
                    log,
                    "origin_ca.revoke_failed",
                    level=logging.WARNING,
                    node_id=node.id,
                    error=exc.message,
                )

    async def list_managed(
        self, deployment: Deployment, user_id: str | None
    ) -> list[ManagedServer]:
        assert user_id is not None, "Hetzner servers are listed with their owner's token"
        api = await self._api(deployment, user_id)
        selector = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_USER}={user_id}"
        servers = await api.paged("/servers", "servers", {"label_selector": selector})
        return [_managed(server) for server in servers]


async def _find_all(api: HetznerApi, node_id: str) -> list[dict[str, Any]]:
    selector = f"{LABEL_MANAGED_BY}={MANAGED_BY},{LABEL_NODE}={node_id}"
    return await api.paged("/servers", "servers", {"label_selector": selector})


async def _find_one(api: HetznerApi, node_id: str) -> dict[str, Any] | None:
    found = await _find_all(api, node_id)
    return found[0] if found else None


async def _delete(api: HetznerApi, server_id: str) -> None:
    """Delete a server; one already gone (404) is not an error."""
    if not server_id.isdigit():  # Hetzner's ids are numbers; anything else names nothing
        event(log, "hetzner.bad_server_id", level=logging.WARNING, server=repr(server_id))
        return
    try:
        await api.call("DELETE", f"/servers/{server_id}")
    except HetznerRefused as refused:
        if refused.hetzner_status == 404:
            return
        raise
    event(log, "hetzner.deleted", server=server_id)
