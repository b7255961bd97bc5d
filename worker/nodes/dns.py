"""Cloud nodes' DNS records, through the Cloudflare DNS API.

Each Hetzner node gets a DNS-only (`proxied: false`) A record `vm-{node_id}.{domain host}`
pointing at its IP: the name the Worker reaches the node's agent at. DNS-only, because
Cloudflare's proxy would only pass its own ports and would put the agent's port behind
the zone's settings; the agent's port is closed to everyone but Cloudflare by the node's
firewall (worker/nodes/providers/hetzner/cloud_init.py).

    vm_hostname(config, node_id)            `vm-{id}.{host}` (the domain without its port)
    await find_records(config, name)        the A records with exactly that name
    await ensure_a_record(config, name, ip) created; an existing record is kept (same IP)
                                            or pointed at `ip` (another IP)
    await delete_records(config, name, id?) deleted; already gone is not an error

Settings: SAM_CLOUDFLARE_API_URL (default https://api.cloudflare.com/client/v4),
SAM_CLOUDFLARE_API_TOKEN (a secret; Zone → DNS → Edit on the zone), SAM_CLOUDFLARE_ZONE_ID.
Answers use Cloudflare's envelope `{"success", "errors", "messages", "result"}`.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

from worker.config import Config
from worker.errors import Unavailable, UpstreamFailed
from worker.http_retry import RetryPolicy, Unreachable, send_with_retry
from worker.logs import event
from worker.platform import fetch

log = logging.getLogger("sam.dns")

RECORD_TTL_SECONDS = 60  # short: a node's IP is new with every VM
RECORDS_PER_PAGE = 100
DNS_RETRY = RetryPolicy(attempts=4, base_delay_seconds=0.5, max_delay_seconds=8.0)
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


class DnsNotConfigured(Unavailable):
    def __init__(self) -> None:
        super().__init__(
            "dns_not_configured",
            "This SAM deployment cannot create cloud nodes: it has no Cloudflare DNS settings. "
            "The operator must set SAM_CLOUDFLARE_API_TOKEN and SAM_CLOUDFLARE_ZONE_ID.",
        )


class DnsError(UpstreamFailed):
    def __init__(self, message: str) -> None:
        super().__init__("dns_error", message)


def vm_hostname(config: Config, node_id: str) -> str:
    """`vm-{node_id}.{domain host}`: where the control plane reaches a cloud node's agent."""
    return f"vm-{node_id}.{config.domain.split(':', 1)[0]}"


def is_configured(config: Config) -> bool:
    return bool(config.cloudflare_api_token and config.cloudflare_zone_id)


async def find_records(config: Config, name: str) -> list[DnsRecord]:
    query = urlencode({"type": "A", "name": name, "per_page": RECORDS_PER_PAGE})
    result = await _call(config, "GET", f"/dns_records?{query}")
    return [DnsRecord.of(raw) for raw in result or []]


async def ensure_a_record(config: Config, name: str, ip: str) -> DnsRecord:
    """A DNS-only A record `name` → `ip`, whatever was there before."""
    for record in await find_records(config, name):
        if record.content == ip and not record.proxied:
            return record
        updated = await _call(
            config, "PATCH", f"/dns_records/{quote(record.id)}", {"content": ip, "proxied": False}
        )
        event(log, "dns.updated", record=name, ip=ip)
        return DnsRecord.of(updated)
    body = {
        "type": "A",
        "name": name,
        "content": ip,
        "ttl": RECORD_TTL_SECONDS,
        "proxied": False,
        "comment": RECORD_COMMENT,
    }
    try:
        created = await _call(config, "POST", "/dns_records", body)
    except _CloudflareRefused as refused:
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
        try:
            await _call(config, "DELETE", f"/dns_records/{quote(each)}")
        except _CloudflareRefused as refused:
            if refused.status_code == 404 or refused.codes & NOT_FOUND_CODES:
                continue  # already gone
            raise
        deleted += 1
    if deleted:
        event(log, "dns.deleted", record=name, records=deleted)
    return deleted


class _CloudflareRefused(DnsError):
    """An unsuccessful answer: a DnsError for the user, with Cloudflare's codes kept."""

    def __init__(self, status: int, errors: list[dict[str, Any]], what: str) -> None:
        self.status_code = status
        self.codes = {int(e["code"]) for e in errors if str(e.get("code", "")).isdigit()}
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        if status in (401, 403):
            message = (
                f"Cloudflare refused the DNS API token ({status}; {detail}). The operator "
                "must give SAM_CLOUDFLARE_API_TOKEN Zone → DNS → Edit on the zone "
                "SAM_CLOUDFLARE_ZONE_ID names."
            )
        else:
            message = f"Cloudflare's DNS API refused {what} ({status}; {detail or 'no detail'})."
        super().__init__(message)


async def _call(config: Config, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    """The `result` of one DNS API call; _CloudflareRefused for an unsuccessful answer."""
    if not is_configured(config):
        raise DnsNotConfigured()
    url = f"{config.cloudflare_api_url}/zones/{quote(config.cloudflare_zone_id or '')}{path}"
    headers = {"Authorization": f"Bearer {config.cloudflare_api_token}"}
    init: dict[str, Any] = {"method": method, "headers": headers}
    if body is not None:
        headers["Content-Type"] = "application/json"
        init["body"] = json.dumps(body)
    what = f"{method} {path.split('?', 1)[0]}"
    try:
        response = await send_with_retry(
            lambda: fetch(url, **init), DNS_RETRY, what=f"cloudflare {what}"
        )
    except Unreachable as exc:
        raise DnsError(
            f"Could not reach the Cloudflare DNS API at {config.cloudflare_api_url} "
            f"({exc.reason}). Try again in a minute."
        ) from exc
    try:
        envelope = await response.json()
    except ValueError:
        envelope = {}
    if not isinstance(envelope, dict):
        envelope = {}
    if 200 <= response.status < 300 and envelope.get("success", False):
        return envelope.get("result")
    errors = [e for e in envelope.get("errors") or [] if isinstance(e, dict)]
    event(
        log, "dns.refused", call=what, status=response.status, codes=[e.get("code") for e in errors]
    )
    raise _CloudflareRefused(response.status, errors, what)
