"""Personal API tokens: `sam_pat_<random>`, stored only as a SHA-256 hash in D1.

A token carries 256 random bits, so a plain SHA-256 is enough (no slow hash needed): the
hash cannot be reversed and a guess has no better odds than guessing the token itself.
"""

import secrets
from typing import Any

from worker.auth.sessions import sha256_hex
from worker.auth.users import User
from worker.clock import Clock
from worker.db import iso
from worker.ids import new_id

TOKEN_PREFIX = "sam_pat_"
TOKEN_RANDOM_BYTES = 32
TOKEN_ID_PREFIX = "tok_"
MAX_TOKENS_PER_USER = 50
# `last_used_at` is written at most this often per token, not on every request.
LAST_USED_RESOLUTION_SECONDS = 60

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
    return None if row is None else row["token_hash"]


async def user_for_token(db: Any, token: str, clock: Clock) -> User | None:
    """The owner of a live token (and a throttled `last_used_at` stamp), or None."""
    row = await db.prepare(_LOOKUP).bind(sha256_hex(token)).first()
    if row is None:
        return None
    now = clock.now()
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
    return User.from_row(row)
