"""Cloud nodes' DNS records, through the Cloudflare DNS API.

Each Hetzner node gets a proxied (`proxied: true`) A record `vm-{node_id}.{domain host}`
pointing at its IP: the name the Worker reaches the node's agent at. Proxied, so that the
Worker's fetch meets Cloudflare's public certificate for the name and Cloudflare's proxy
carries the request on to the node over TLS, checking the node's Origin CA certificate
("Full (strict)"); the agent's port is closed to everyone but Cloudflare by the node's
firewall (worker/nodes/providers/hetzner/cloud_init.py). docs/edge-to-node.md says why.

    vm_hostname(config, node_id)            `vm-{id}.{host}` (the domain without its port)
    await find_records(config, name)        the A records with exactly that name
    await ensure_a_record(config, name, ip) created (proxied); an existing record is kept
                                            (same IP, proxied) or pointed at `ip` and proxied
    await delete_records(config, name, id?) deleted; already gone is not an error

Settings and errors: worker/nodes/cloudflare_api.py (the token needs Zone → DNS → Edit).
"""

import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from worker.config import Config
from worker.logs import event
from worker.nodes import cloudflare_api
from worker.nodes.cloudflare_api import DNS, CloudflareRefused

log = logging.getLogger("sam.dns")

AUTOMATIC_TTL = 1  # what Cloudflare keeps for a proxied record
RECORDS_PER_PAGE = 100
# Cloudflare's error codes for "that record is already there" and "there is no such record".
ALREADY_EXISTS_CODES = frozenset({81053, 81057, 81058})
NOT_FOUND_CODES = frozenset({81044})
RECORD_COMMENT = "managed-by=sam (a SAM node's agent)"


@dataclass(frozen=True)
class DnsRecord:
    id: str
    name: str
    type: str
    content: str
    proxied: bool

    @classmethod
    def of(cls, raw: dict[str, Any]) -> "DnsRecord":
        return cls(
            str(raw["id"]), raw["name"], raw["type"], raw["content"], bool(raw.get("proxied"))
        )


def vm_hostname(config: Config, node_id: str) -> str:
    """`vm-{node_id}.{domain host}`: where the control plane reaches a cloud node's agent."""
    return f"vm-{node_id}.{config.domain.split(':', 1)[0]}"


async def find_records(config: Config, name: str) -> list[DnsRecord]:
    query = urlencode({"type": "A", "name": name, "per_page": RECORDS_PER_PAGE})
    result = await _call(config, "GET", f"/dns_records?{query}")
    return [DnsRecord.of(raw) for raw in result or []]


async def ensure_a_record(config: Config, name: str, ip: str) -> DnsRecord:
    """A proxied A record `name` → `ip`, whatever was there before."""
    for record in await find_records(config, name):
        if record.content == ip and record.proxied:
            return record
        updated = await _call(
            config, "PATCH", f"/dns_records/{quote(record.id)}", {"content": ip, "proxied": True}
        )
        event(log, "dns.updated", record=name, ip=ip)
        return DnsRecord.of(updated)
    body = {
        "type": "A",
        "name": name,
        "content": ip,
        "ttl": AUTOMATIC_TTL,
        "proxied": True,
        "comment": RECORD_COMMENT,
    }
    try:
        created = await _call(config, "POST", "/dns_records", body)
    except CloudflareRefused as refused:
        if refused.codes & ALREADY_EXISTS_CODES:
            # Made by a concurrent attempt for the same node since we looked: use it.
            return await ensure_a_record(config, name, ip)
        raise
    event(log, "dns.created", record=name, ip=ip)
    return DnsRecord.of(created)


async def delete_records(config: Config, name: str, record_id: str | None = None) -> int:
    """Delete the record `record_id` and every A record named `name`; how many went."""
    ids = [record_id] if record_id else []
    ids += [record.id for record in await find_records(config, name) if record.id not in ids]
    deleted = 0
    for each in ids:
        path = _zone_path(config, f"/dns_records/{quote(each)}")
        deleted += await cloudflare_api.delete_if_present(config, DNS, path, NOT_FOUND_CODES)
    if deleted:
        event(log, "dns.deleted", record=name, records=deleted)
    return deleted


async def _call(config: Config, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    return await cloudflare_api.call(config, DNS, method, _zone_path(config, path), body)


def _zone_path(config: Config, path: str) -> str:
    return f"/zones/{quote(cloudflare_api.zone_id(config))}{path}"
