"""Fixed-window rate limits, counted in KV, as a FastAPI dependency.

    KV  rl:<limit name>:<subject>:<window start>  →  requests counted so far in that window

A route opts in with one dependency; the subject (the signed-in user, or the client's IP
address) follows from the limit:

    from worker.api.ratelimit import BOOTSTRAP, rate_limited

    @router.post("/api/bootstrap/{token}", dependencies=[Depends(rate_limited(BOOTSTRAP))])

    WORKSPACE_CREATE  per user  POST /api/workspaces (accepted ones only: the route calls
                                `count_accepted` once the workspace exists, so a refused
                                spec is never counted)
    TERMINAL_TOKEN    per user  POST /api/terminal/token
    BOOTSTRAP         per IP    POST /api/bootstrap/{token}
    SIGN_IN           per IP    GET /api/auth/github/login, POST /api/auth/dev-login
    API_TOKEN         per IP    POST /api/tokens, POST /api/credentials (a personal API
                                token made, or a provider's API token checked and stored)

Over the limit, the request is refused before the handler runs: 429 `rate_limited`, a
message in plain words ("You created 10 workspaces in the last 10 minutes; try again in 4
minutes."), and `Retry-After` (seconds). A per-user limit runs
`current_user` first, so an anonymous caller still gets its 401; a per-IP limit counts
before anything else, anonymous attempts included. The client's IP address is the
`CF-Connecting-IP` header, which Cloudflare sets (the local edge sets it from the peer
address, overwriting whatever the client sent); IPv6 addresses count per /64, the block
one subscriber usually holds.

The limits are approximate, by design. KV is eventually consistent across Cloudflare's
locations (a counter written in one may read stale in another for up to a minute), the
read-increment-write is not atomic (concurrent requests can each see the same count), and
KV accepts one write per second per key, so a write that fails lets the request through
rather than refusing a legitimate user. They bound abuse by one client to about the
limit; they are not an exact quota (that would take a Durable Object per subject).

Operators (and tests) override any limit with the var `SAM_RATE_LIMITS`, e.g.
`SAM_RATE_LIMITS="bootstrap=5/60,sign_in=100/600"` (name=requests/window seconds).
"""

import functools
import ipaddress
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from fastapi import Request

from worker.api.deps import CurrentUser, DeploymentDep
from worker.clock import Clock
from worker.config import ConfigError
from worker.errors import RateLimited
from worker.logs import event

log = logging.getLogger("sam.ratelimit")

KEY_PREFIX = "rl:"
# Cloudflare KV refuses an expirationTtl under 60 s; a counter outlives its window anyway.
KV_MIN_TTL_SECONDS = 60
IPV6_SUBJECT_PREFIX_BITS = 64
# When no client address is known (a request that did not come through an edge).
UNKNOWN_IP = "unknown"
CLIENT_IP_HEADER = "cf-connecting-ip"
OVERRIDES_VAR = "SAM_RATE_LIMITS"


class Per(StrEnum):
    USER = "user"
    IP = "ip"


@dataclass(frozen=True)
class Limit:
    name: str
    requests: int
    window_seconds: int
    per: Per
    # The refusal, in plain words: "{count}", "{window}" ("10 minutes") and "{retry}"
    # ("4 minutes") are filled in.
    refusal: str
    # True: the dependency only checks, and the route counts what it accepted
    # (`count_accepted`); False: every attempt counts (guessing is what is limited).
    accepted_only: bool = False


WORKSPACE_CREATE = Limit(
    "workspace_create",
    10,
    10 * 60,
    Per.USER,
    "You created {count} workspaces in the last {window}; try again in {retry}.",
    accepted_only=True,
)
# Every terminal tab and every reconnect asks for one.
TERMINAL_TOKEN = Limit(
    "terminal_token",
    60,
    60,
    Per.USER,
    "This account opened {count} terminal connections in the last {window}; try again in {retry}.",
)
# One exchange per node; more from one address in a minute is guessing or a loop.
BOOTSTRAP = Limit(
    "bootstrap",
    30,
    60,
    Per.IP,
    "{count} node bootstrap attempts came from this address in the last {window}; "
    "try again in {retry}.",
)
SIGN_IN = Limit(
    "sign_in",
    60,
    60,
    Per.IP,
    "{count} sign-in attempts came from this address in the last {window}; try again in {retry}.",
)
API_TOKEN = Limit(
    "api_token",
    30,
    60,
    Per.IP,
    "{count} API tokens were created or submitted from this address in the last {window}; "
    "try again in {retry}.",
)

LIMITS: dict[str, Limit] = {
    limit.name: limit for limit in (WORKSPACE_CREATE, TERMINAL_TOKEN, BOOTSTRAP, SIGN_IN, API_TOKEN)
}


@dataclass(frozen=True)
class Window:
    start: int  # epoch seconds, a multiple of the limit's window
    end: int

    @classmethod
    def at(cls, now: float, window_seconds: int) -> "Window":
        start = int(now // window_seconds) * window_seconds
        return cls(start, start + window_seconds)

    def retry_after(self, now: float) -> int:
        """Whole seconds until the next window opens (at least 1)."""
        return max(1, math.ceil(self.end - now))

    def ttl(self, now: float) -> int:
        return max(KV_MIN_TTL_SECONDS, math.ceil(self.end - now))


def key(limit: Limit, subject: str, window: Window) -> str:
    return f"{KEY_PREFIX}{limit.name}:{subject}:{window.start}"


def in_words(seconds: int) -> str:
    """A duration as a person says it: "45 seconds", "1 minute", "4 minutes", "2 hours"
    (rounded up: never sooner than it really is)."""
    for unit, size in (("hour", 3600), ("minute", 60)):
        if seconds >= size:
            amount = math.ceil(seconds / size)
            return f"{amount} {unit}" + ("s" if amount != 1 else "")
    return f"{seconds} second" + ("s" if seconds != 1 else "")


async def hit(env: Any, limit: Limit, subject: str, clock: Clock, count: bool = True) -> None:
    """Check `subject` against `limit` (RateLimited if it is over) and, unless `count` is
    False, count this request."""
    limit = effective(env, limit)
    now = clock.now()
    window = Window.at(now, limit.window_seconds)
    done = await _counted(env, key(limit, subject, window))
    if done >= limit.requests:
        retry = window.retry_after(now)
        event(log, "ratelimit.refused", limit=limit.name, subject=subject, retry_after=retry)
        window_words = in_words(limit.window_seconds).removeprefix("1 ")
        message = limit.refusal.format(count=done, window=window_words, retry=in_words(retry))
        raise RateLimited("rate_limited", message, retry)
    if count:
        await _count(env, limit, subject, now, done)


async def count_accepted(deployment: Any, limit: Limit, user_id: str) -> None:
    """Count one accepted request of an `accepted_only` per-user limit, after the work
    (never refuses: what was accepted stays accepted)."""
    assert limit.accepted_only and limit.per is Per.USER, f"{limit.name} counts every attempt"
    limit, now = effective(deployment.env, limit), deployment.clock.now()
    window = Window.at(now, limit.window_seconds)
    done = await _counted(deployment.env, key(limit, user_id, window))
    await _count(deployment.env, limit, user_id, now, done)


async def _counted(env: Any, counter: str) -> int:
    raw = await env.KV.get(counter)
    return int(raw) if raw is not None else 0


async def _count(env: Any, limit: Limit, subject: str, now: float, done: int) -> None:
    window = Window.at(now, limit.window_seconds)
    try:
        await env.KV.put(key(limit, subject, window), str(done + 1), expirationTtl=window.ttl(now))
    # Cloudflare KV refuses more than one write per second to a key (a JS error here); a
    # refused count must not refuse the user, so the limit just runs a little loose.
    except Exception as exc:
        event(log, "ratelimit.write_failed", limit=limit.name, error=type(exc).__name__)


def rate_limited(limit: Limit) -> Callable[..., Awaitable[None]]:
    """A dependency that checks (and, unless `accepted_only`, counts) the request against
    `limit` (see the module docstring)."""
    assert limit.name in LIMITS, f"unknown rate limit {limit.name!r}: add it to LIMITS"
    if limit.per is Per.USER:

        async def per_user(
            deployment: DeploymentDep,
            user: CurrentUser,
        ) -> None:
            await hit(
                deployment.env, limit, user.id, deployment.clock, count=not limit.accepted_only
            )

        return per_user

    async def per_ip(request: Request, deployment: DeploymentDep) -> None:
        subject = client_ip(request.headers.get(CLIENT_IP_HEADER))
        await hit(deployment.env, limit, subject, deployment.clock)

    return per_ip


def client_ip(header: str | None) -> str:
    """The subject for a client address: the address itself, or its /64 for IPv6."""
    try:
        address = ipaddress.ip_address((header or "").strip())
    except ValueError:
        return UNKNOWN_IP
    if address.version == 6:
        network = ipaddress.ip_network(f"{address}/{IPV6_SUBJECT_PREFIX_BITS}", strict=False)
        return str(network)
    return str(address)


def effective(env: Any, limit: Limit) -> Limit:
    """`limit`, or its override from the `SAM_RATE_LIMITS` var."""
    raw = getattr(env, OVERRIDES_VAR, None)
    if not raw:
        return limit
    return overrides(str(raw)).get(limit.name, limit)


@functools.lru_cache(maxsize=8)
def overrides(raw: str) -> dict[str, Limit]:
    """Parse `name=requests/seconds[,name=requests/seconds...]` (spaces also separate)."""
    parsed: dict[str, Limit] = {}
    for item in raw.replace(",", " ").split():
        name, _, spec = item.partition("=")
        requests, _, seconds = spec.partition("/")
        if name not in LIMITS:
            raise ConfigError(
                f"{OVERRIDES_VAR} names an unknown limit {name!r}; known: {', '.join(LIMITS)}"
            )
        try:
            count, window = int(requests), int(seconds)
        except ValueError:
            raise ConfigError(
                f"{OVERRIDES_VAR}: {item!r} must look like {name}=REQUESTS/SECONDS"
            ) from None
        if count < 1 or window < 1:
            raise ConfigError(f"{OVERRIDES_VAR}: {item!r} needs at least 1 request and 1 s")
        parsed[name] = replace(LIMITS[name], requests=count, window_seconds=window)
    return parsed
