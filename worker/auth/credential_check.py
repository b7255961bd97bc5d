"""A credential checked with one read-only GET to its upstream before it is saved.

    await check_credential(CredentialCheck(url, headers, "hetzner", unreachable, rejected,
                                           unavailable))

200 accepts it; 401/403 is a refusal the user can act on (`invalid_credential`, a 400);
anything else, or no answer within CHECK_TIMEOUT_SECONDS, is `{prefix}_unavailable` or
`{prefix}_unreachable` (a 502) saying to try again. The credential is never logged.
"""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass

from worker.errors import InvalidInput, UpstreamFailed
from worker.logs import event
from worker.platform import fetch

log = logging.getLogger("sam.credential_check")

CHECK_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class CredentialCheck:
    """The GET that accepts a credential, and what to tell the user when it does not."""

    url: str
    headers: dict[str, str]  # the credential, as the upstream takes it
    error_prefix: str  # "hetzner": hetzner_unreachable, hetzner_unavailable
    unreachable: str  # the message when the upstream could not be reached
    rejected: Callable[[int], str]  # the message for a 401/403, given the status
    unavailable: Callable[[int], str]  # the message for any other status


async def check_credential(check: CredentialCheck) -> None:
    """Raise a domain error unless the upstream answers the check's GET with 200."""
    headers = {"Accept": "application/json", **check.headers}
    try:
        response = await asyncio.wait_for(
            fetch(check.url, method="GET", headers=headers), CHECK_TIMEOUT_SECONDS
        )
    # The runtime's fetch fails with its own types (aiohttp's here, a JsException on
    # Cloudflare); only the type is logged, as a message could quote the request.
    except Exception as exc:
        event(
            log,
            f"{check.error_prefix}.unreachable",
            level=logging.WARNING,
            url=check.url,
            error=type(exc).__name__,
        )
        raise UpstreamFailed(f"{check.error_prefix}_unreachable", check.unreachable) from exc
    if response.status == 200:
        return
    if response.status in (401, 403):
        raise InvalidInput("invalid_credential", check.rejected(response.status))
    event(
        log,
        f"{check.error_prefix}.check_failed",
        level=logging.WARNING,
        url=check.url,
        status=response.status,
    )
    raise UpstreamFailed(f"{check.error_prefix}_unavailable", check.unavailable(response.status))
