"""Personal API tokens: `sam_pat_<random>`, stored only as a SHA-256 hash in D1.

A token carries 256 random bits, so a plain SHA-256 is enough (no slow hash needed): the
hash cannot be reversed and a guess has no better odds than guessing the token itself.

Each isolate remembers the live tokens it looked up for LIVE_TOKEN_CACHE_SECONDS, so a
client calling the API in a loop costs one D1 statement per token per 10 s instead of
one per request. Revoking a token (`revoke_token`) forgets it in the isolate that revoked
it at once; any other isolate of the Worker accepts it for at most
LIVE_TOKEN_CACHE_SECONDS more. That is the revocation bound, and it also bounds how long
a cached owner's login, name or admin flag may lag behind D1.
"""

import secrets
from dataclasses import dataclass
from typing import Any

from worker.auth.sessions import sha256_hex
from worker.auth.users import User
from worker.clock import Clock
from worker.db import iso
from worker.ids import new_id
from worker.isolate_cache import IsolateCache

TOKEN_PREFIX = "sam_pat_"
TOKEN_RANDOM_BYTES = 32
TOKEN_ID_PREFIX = "tok_"
MAX_TOKENS_PER_USER = 50
# `last_used_at` is written at most this often per token, not on every request (and only
# on a lookup that missed the cache, so it may lag by LIVE_TOKEN_CACHE_SECONDS more).
LAST_USED_RESOLUTION_SECONDS = 60
LIVE_TOKEN_CACHE_SECONDS = 10.0
LIVE_TOKEN_CACHE_ENTRIES = 4096


@dataclass(frozen=True)
class LiveToken:
    token_id: str
    owner: User


# sha256(token) → the live token, per isolate (worker/isolate_cache.py).
_live: IsolateCache[str, LiveToken] = IsolateCache(
    LIVE_TOKEN_CACHE_ENTRIES, LIVE_TOKEN_CACHE_SECONDS
)

_LOOKUP = """
SELECT u.id, u.login, u.name, u.email, u.avatar_url, u.is_admin,
       t.id AS token_id, t.last_used_at
FROM api_tokens t JOIN users u ON u.id = t.user_id
WHERE t.token_hash = ? AND t.revoked_at IS NULL
"""

# The count and the insert are one statement, so parallel creates cannot pass the cap.
_CREATE = """
INSERT INTO api_tokens (id, user_id, name, token_hash)
SELECT ?1, ?2, ?3, ?4
WHERE (SELECT COUNT(*) FROM api_tokens WHERE user_id = ?2 AND revoked_at IS NULL) < ?5
RETURNING id, name, created_at
"""


def looks_like_token(value: str) -> bool:
    return value.startswith(TOKEN_PREFIX)


async def create_token(db: Any, user_id: str, name: str) -> tuple[dict[str, Any], str] | None:
    """A new token: (its listing, the token itself). None when the user is at the cap."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(TOKEN_RANDOM_BYTES)
    token_id = new_id(TOKEN_ID_PREFIX)
    row = (
        await db.prepare(_CREATE)
        .bind(token_id, user_id, name, sha256_hex(token), MAX_TOKENS_PER_USER)
        .first()
    )
    if row is None:
        return None
    return {"id": row["id"], "name": row["name"], "created_at": row["created_at"]}, token


async def list_tokens(db: Any, user_id: str) -> list[dict[str, Any]]:
    result = (
        await db.prepare(
            "SELECT id, name, created_at, last_used_at FROM api_tokens "
            "WHERE user_id = ? AND revoked_at IS NULL ORDER BY created_at, id"
        )
        .bind(user_id)
        .all()
    )
    return [dict(row) for row in result["results"]]


async def revoke_token(db: Any, user_id: str, token_id: str, clock: Clock) -> str | None:
    """Revoke the user's own token; its hash (what its grants name), or None if they have
    no such live token."""
    row = (
        await db.prepare(
            "UPDATE api_tokens SET revoked_at = ? "
            "WHERE id = ? AND user_id = ? AND revoked_at IS NULL RETURNING token_hash"
        )
        .bind(iso(clock.now()), token_id, user_id)
        .first()
    )
    _live.discard(lambda live: live.token_id == token_id)
    return None if row is None else row["token_hash"]


async def user_for_token(db: Any, token: str, clock: Clock) -> User | None:
    """The owner of a live token (and a throttled `last_used_at` stamp), or None."""
    digest, now = sha256_hex(token), clock.now()
    cached = _live.get(digest, now)
    if cached is not None:
        return cached.owner
    row = await db.prepare(_LOOKUP).bind(digest).first()
    if row is None:
        return None
    stale_before = iso(now - LAST_USED_RESOLUTION_SECONDS)
    if row["last_used_at"] is None or row["last_used_at"] < stale_before:
        await (
            db.prepare(
                "UPDATE api_tokens SET last_used_at = ? "
                "WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)"
            )
            .bind(iso(now), row["token_id"], stale_before)
            .run()
        )
    owner = User.from_row(row)
    _live.put(digest, LiveToken(row["token_id"], owner), now)
    return owner
