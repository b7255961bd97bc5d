"""One call to a third-party HTTP API that may throttle or fail for a while.

`send_with_retry(send, policy)` makes the attempt `send()` and retries it when the answer
is 429 or 5xx, or when the connection fails or times out: exponential backoff with full
jitter (a random delay up to `base * 2**n`, capped), and never sooner than the server
asked with `Retry-After` (seconds). Hetzner's `RateLimit-Reset` is not a retry hint: it is
when the whole hourly bucket is full again, while one request's worth refills each
second, so its 429s are met with the backoff alone. A server asking for more than
`max_server_delay_seconds` is not waited for: its answer is returned at once, so a Worker
request is never held open for minutes.

It returns the last response (the caller maps statuses to its own errors) or raises
`Unreachable` when the last attempt had no response at all. Sleep and jitter are
injected so tests neither sleep nor depend on chance.
"""

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from worker.logs import event

log = logging.getLogger("sam.http")

RETRYABLE_STATUSES = frozenset({429, 500, 502, 503, 504})

Sleep = Callable[[float], Awaitable[None]]
Jitter = Callable[[], float]


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 16.0
    max_server_delay_seconds: float = 60.0
    timeout_seconds: float = 30.0


class Unreachable(Exception):
    """Every attempt failed without an HTTP answer; `reason` is the last error's type."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


async def send_with_retry(
    send: Callable[[], Awaitable[Any]],
    policy: RetryPolicy,
    *,
    what: str,
    sleep: Sleep = asyncio.sleep,
    jitter: Jitter = random.random,
) -> Any:
    """The first non-retryable response, or the last one once the attempts are spent.

    `what` names the call in log lines (`hetzner POST /v1/servers`); never a secret.
    """
    assert policy.attempts >= 1
    for attempt in range(policy.attempts):
        last = attempt == policy.attempts - 1
        try:
            response = await asyncio.wait_for(send(), policy.timeout_seconds)
        # The runtime's fetch fails with its own types (aiohttp's here, a JsException on
        # Cloudflare): only the type is kept, as a message could quote the request.
        except Exception as exc:
            reason = type(exc).__name__
            if last:
                raise Unreachable(reason) from exc
            delay = backoff_seconds(policy, attempt, jitter)
            event(log, "http.retry", call=what, error=reason, attempt=attempt + 1, delay=delay)
            await sleep(delay)
            continue
        if response.status not in RETRYABLE_STATUSES or last:
            return response
        asked = server_delay_seconds(response.headers)
        if asked is not None and asked > policy.max_server_delay_seconds:
            event(log, "http.retry_refused", call=what, status=response.status, asked=asked)
            return response
        delay = max(asked or 0.0, backoff_seconds(policy, attempt, jitter))
        event(
            log, "http.retry", call=what, status=response.status, attempt=attempt + 1, delay=delay
        )
        await sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover


def backoff_seconds(policy: RetryPolicy, attempt: int, jitter: Jitter) -> float:
    """Full jitter: uniformly random up to the capped exponential step."""
    step = min(policy.max_delay_seconds, policy.base_delay_seconds * 2**attempt)
    return round(step * jitter(), 3)


def server_delay_seconds(headers: Any) -> float | None:
    """The seconds `Retry-After` asks for (None when absent or an HTTP date)."""
    retry_after = headers.get("retry-after")
    if not retry_after:
        return None
    try:
        return max(0.0, float(retry_after))
    except ValueError:
        return None  # an HTTP date: rare from APIs; the backoff applies
