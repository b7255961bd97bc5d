"""One call to Cloudflare's v4 API, for the parts of it SAM uses for cloud nodes: DNS
records (worker/nodes/dns.py) and Origin CA certificates (worker/nodes/origin_ca.py).

    await call(config, DNS, "GET", "/zones/{zone}/dns_records?…")   the envelope's `result`
    await delete_if_present(config, DNS, path, NOT_FOUND_CODES)      False if already gone

Every answer is Cloudflare's envelope `{"success", "errors", "messages", "result"}`; an
unsuccessful one raises `CloudflareRefused` (an UpstreamFailed with the API's own error
code, its Cloudflare error codes kept in `.codes`), a network failure after the retries
one with "try again". Settings: SAM_CLOUDFLARE_API_URL, SAM_CLOUDFLARE_API_TOKEN (a
secret) and SAM_CLOUDFLARE_ZONE_ID; the token needs each API's permission on the zone.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any

from worker.config import Config
from worker.errors import Unavailable, UpstreamFailed
from worker.http_retry import RetryPolicy, Unreachable, send_with_retry
from worker.logs import event
from worker.platform import fetch

log = logging.getLogger("sam.cloudflare")

CLOUDFLARE_RETRY = RetryPolicy(attempts=4, base_delay_seconds=0.5, max_delay_seconds=8.0)


@dataclass(frozen=True)
class CloudflareApi:
    """One of Cloudflare's APIs, as errors about it name it."""

    error_code: str  # SAM's error code for its failures
    name: str  # "DNS API"
    permission: str  # what the API token needs on the zone


DNS = CloudflareApi("dns_error", "DNS API", "Zone → DNS → Edit")
ORIGIN_CA = CloudflareApi("origin_ca_error", "Origin CA API", "Zone → SSL and Certificates → Edit")


class CloudflareNotConfigured(Unavailable):
    def __init__(self) -> None:
        super().__init__(
            "cloudflare_not_configured",
            "This SAM deployment cannot create cloud nodes: it has no Cloudflare settings. "
            "The operator must set SAM_CLOUDFLARE_API_TOKEN and SAM_CLOUDFLARE_ZONE_ID.",
        )


class CloudflareError(UpstreamFailed):
    def __init__(self, api: CloudflareApi, message: str) -> None:
        super().__init__(api.error_code, message)


class CloudflareRefused(CloudflareError):
    """An unsuccessful answer, with Cloudflare's status and error codes kept."""

    def __init__(self, api: CloudflareApi, status: int, errors: list[dict[str, Any]], what: str):
        self.status_code = status
        self.codes = {int(e["code"]) for e in errors if str(e.get("code", "")).isdigit()}
        detail = "; ".join(f"{e.get('code')}: {e.get('message')}" for e in errors)
        if status in (401, 403):
            message = (
                f"Cloudflare refused the API token for its {api.name} ({status}; {detail}). "
                f"The operator must give SAM_CLOUDFLARE_API_TOKEN {api.permission} on the "
                "zone SAM_CLOUDFLARE_ZONE_ID names."
            )
        else:
            message = f"Cloudflare's {api.name} refused {what} ({status}; {detail or 'no detail'})."
        super().__init__(api, message)


def is_configured(config: Config) -> bool:
    return bool(config.cloudflare_api_token and config.cloudflare_zone_id)


def zone_id(config: Config) -> str:
    if not is_configured(config):
        raise CloudflareNotConfigured()
    return config.cloudflare_zone_id or ""


async def call(
    config: Config, api: CloudflareApi, method: str, path: str, body: dict[str, Any] | None = None
) -> Any:
    """The `result` of one call to `path` (under the API's base URL); CloudflareRefused for
    an unsuccessful answer."""
    zone_id(config)  # refuses before any call when unconfigured
    url = f"{config.cloudflare_api_url}{path}"
    headers = {"Authorization": f"Bearer {config.cloudflare_api_token}"}
    init: dict[str, Any] = {"method": method, "headers": headers}
    if body is not None:
        headers["Content-Type"] = "application/json"
        init["body"] = json.dumps(body)
    what = f"{method} {path.split('?', 1)[0]}"
    try:
        response = await send_with_retry(
            lambda: fetch(url, **init), CLOUDFLARE_RETRY, what=f"cloudflare {what}"
        )
    except Unreachable as exc:
        raise CloudflareError(
            api,
            f"Could not reach Cloudflare's {api.name} at {config.cloudflare_api_url} "
            f"({exc.reason}). Try again in a minute.",
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
        log,
        "cloudflare.refused",
        call=what,
        status=response.status,
        codes=[e.get("code") for e in errors],
    )
    raise CloudflareRefused(api, response.status, errors, what)


async def delete_if_present(
    config: Config, api: CloudflareApi, path: str, not_found_codes: frozenset[int] = frozenset()
) -> bool:
    """DELETE `path`; False when Cloudflare says it is already gone (a 404, or one of the
    API's own "no such thing" codes), so a repeated delete is not an error."""
    try:
        await call(config, api, "DELETE", path)
    except CloudflareRefused as refused:
        if refused.status_code == 404 or refused.codes & not_found_codes:
            return False
        raise
    return True
