"""Browser sessions: an opaque id in an HttpOnly cookie, its record in KV.

The cookie holds a random id; KV holds `session:<sha256(id)>` → {user_id, created,
expires} with a TTL, so a copy of KV alone cannot be replayed as a cookie. Sign-out deletes
the record. The cookie has no Domain attribute: it stays on the app host, where the SPA
calls the API same-origin (`app.{domain}/api/...`).

CSRF: SameSite=Lax already keeps the cookie off cross-site POSTs from other sites, but
not from sibling hosts of the same site (`ws-{id}.{domain}` serves user content). So a
cookie-authenticated state-changing request must also carry a same-origin signal:
`Origin` equal to the app origin, or, when a browser sends no Origin,
`Sec-Fetch-Site: same-origin`. Bearer-token requests carry no ambient credential and are
not checked.
"""

import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response

from worker.clock import Clock
from worker.config import Config
from worker.errors import Forbidden

SESSION_COOKIE = "sam_session"
SESSION_TTL_SECONDS = 14 * 24 * 60 * 60
SESSION_ID_BYTES = 32
SESSION_KEY_PREFIX = "session:"
STATE_CHANGING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@dataclass(frozen=True)
class Session:
    user_id: str
    created: int
    expires: int


def sha256_hex(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _key(session_id: str) -> str:
    return SESSION_KEY_PREFIX + sha256_hex(session_id)


async def create_session(kv: Any, user_id: str, clock: Clock) -> str:
    """Store a new session for `user_id`; returns the id, for the cookie only."""
    session_id = secrets.token_urlsafe(SESSION_ID_BYTES)
    now = int(clock.now())
    record = {"user_id": user_id, "created": now, "expires": now + SESSION_TTL_SECONDS}
    await kv.put(_key(session_id), json.dumps(record), expirationTtl=SESSION_TTL_SECONDS)
    return session_id


async def read_session(kv: Any, session_id: str, clock: Clock) -> Session | None:
    return await read_session_by_digest(kv, sha256_hex(session_id), clock)


async def read_session_by_digest(kv: Any, digest: str, clock: Clock) -> Session | None:
    """The session whose id hashes to `digest` (what a terminal token's grant names)."""
    raw = await kv.get(SESSION_KEY_PREFIX + digest)
    if raw is None:
        return None
    record = json.loads(raw)
    # KV expiry is eventual on Cloudflare; the record's own deadline is authoritative.
    if record["expires"] <= clock.now():
        return None
    return Session(record["user_id"], record["created"], record["expires"])


async def revoke_session(kv: Any, session_id: str) -> None:
    await kv.delete(_key(session_id))


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def app_origin(request: Request, config: Config) -> str:
    """`https://app.{domain}` (the scheme of the request: `http` locally)."""
    return f"{request.url.scheme}://app.{config.domain}"


def set_session_cookie(response: Response, request: Request, session_id: str) -> None:
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=SESSION_TTL_SECONDS,
        path="/",
        secure=is_https(request),
        httponly=True,
        samesite="lax",
    )


def clear_session_cookie(response: Response, request: Request) -> None:
    response.delete_cookie(
        SESSION_COOKIE, path="/", secure=is_https(request), httponly=True, samesite="lax"
    )


def check_same_origin(request: Request, config: Config) -> None:
    """Refuse a cookie-authenticated state-changing request without a same-origin signal."""
    if request.method not in STATE_CHANGING_METHODS:
        return
    expected = app_origin(request, config)
    origin = request.headers.get("origin")
    if origin is not None:
        if origin == expected:
            return
    elif request.headers.get("sec-fetch-site") == "same-origin":
        return
    raise Forbidden(
        "cross_origin_request",
        f"{request.method} with a session cookie must come from {expected} (its Origin "
        "header must match). Scripts should use an API token: Authorization: Bearer ...",
    )
