"""The control plane's ES256 signing keys: stored in D1, made on first use, rotated.

    one active key (retired_at IS NULL)  signs every new token
    retired keys                         still verify, and stay published, for
                                         `retention_seconds` after retirement: by then
                                         every token they signed has expired
    older retired keys                   deleted at the next rotation

The private half is stored as PKCS #8 DER, sealed with worker/auth/crypto.py (owner
"system", kind bound to the kid, so a sealed key copied into another key's row does not
open). Nothing here runs at import time: Workers snapshot the module top level, and a key
made there would be baked into every isolate. How long keys are kept is the token
policy's business (worker/auth/scoped_tokens.py), so it is passed in.
"""

import json
import secrets
from dataclasses import dataclass
from typing import Any

from worker.auth.crypto import SYSTEM_OWNER, Cipher, Sealed, from_blob, new_signing_key, to_blob
from worker.auth.jws import ALGORITHM
from worker.db import iso
from worker.deployment import Deployment

KID_BYTES = 8  # 16 hex characters; kids are public, they only need to be unique
SIGNING_KEY_KIND = "signing_key"

# Inserts only while no key is active, so two first uses racing make one key, not two.
_INSERT_FIRST = """
INSERT INTO signing_keys
    (kid, private_key_nonce, private_key_ciphertext, public_jwk, created_at)
SELECT ?1, ?2, ?3, ?4, ?5
WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)
"""
_INSERT = """
INSERT INTO signing_keys
    (kid, private_key_nonce, private_key_ciphertext, public_jwk, created_at)
VALUES (?1, ?2, ?3, ?4, ?5)
"""
_ACTIVE = """
SELECT kid, private_key_nonce, private_key_ciphertext FROM signing_keys
WHERE retired_at IS NULL ORDER BY created_at DESC, kid DESC LIMIT 1
"""
_PUBLISHED = """
SELECT kid, public_jwk, created_at, retired_at FROM signing_keys
WHERE retired_at IS NULL OR retired_at > ?1 ORDER BY created_at DESC, kid DESC
"""


@dataclass(frozen=True)
class ActiveKey:
    kid: str
    pkcs8: bytes  # the private key, PKCS #8 DER


@dataclass(frozen=True)
class PublishedKey:
    kid: str
    public_jwk: dict[str, Any]  # kty, crv, x, y, kid, alg, use: never a private part
    created_at: str
    retired_at: str | None


@dataclass(frozen=True)
class Rotation:
    kid: str
    retired: list[str]


def _kind(kid: str) -> str:
    return f"{SIGNING_KEY_KIND}:{kid}"


async def _new_key(cipher: Cipher, now: float) -> tuple[Any, ...]:
    """Bind values for one INSERT of a fresh key."""
    kid = secrets.token_hex(KID_BYTES)
    key = await new_signing_key()
    sealed = await cipher.seal(SYSTEM_OWNER, _kind(kid), key.pkcs8)
    public_jwk = {**key.public_jwk, "kid": kid, "alg": ALGORITHM, "use": "sig"}
    nonce, ciphertext = to_blob(sealed.nonce), to_blob(sealed.ciphertext)
    return kid, nonce, ciphertext, json.dumps(public_jwk), iso(now)


async def active_key(deployment: Deployment) -> ActiveKey:
    """The key that signs new tokens; made (and stored) the first time one is needed."""
    cipher = Cipher.from_config(deployment.config)
    db = deployment.env.DATABASE
    row = await db.prepare(_ACTIVE).first()
    if row is None:
        values = await _new_key(cipher, deployment.now())
        await db.prepare(_INSERT_FIRST).bind(*values).run()
        row = await db.prepare(_ACTIVE).first()
        assert row is not None, "a key was inserted, or another request's was"
    sealed = Sealed(from_blob(row["private_key_nonce"]), from_blob(row["private_key_ciphertext"]))
    return ActiveKey(row["kid"], await cipher.open(SYSTEM_OWNER, _kind(row["kid"]), sealed))


async def published_keys(deployment: Deployment, retention_seconds: float) -> list[PublishedKey]:
    """Every key a live token may carry: the active one and the recently retired."""
    since = iso(deployment.now() - retention_seconds)
    result = await deployment.env.DATABASE.prepare(_PUBLISHED).bind(since).all()
    return [
        PublishedKey(
            row["kid"], json.loads(row["public_jwk"]), row["created_at"], row["retired_at"]
        )
        for row in result["results"]
    ]


async def rotate(deployment: Deployment, retention_seconds: float) -> Rotation:
    """Retire the active key(s), make a new active one, drop keys past their retention."""
    now = deployment.now()
    db = deployment.env.DATABASE
    retired = await db.prepare("SELECT kid FROM signing_keys WHERE retired_at IS NULL").all()
    values = await _new_key(Cipher.from_config(deployment.config), now)
    # One batch, so there is never a moment with no active key or two of them.
    await db.batch(
        [
            db.prepare(
                "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at <= ?1"
            ).bind(iso(now - retention_seconds)),
            db.prepare("UPDATE signing_keys SET retired_at = ?1 WHERE retired_at IS NULL").bind(
                iso(now)
            ),
            db.prepare(_INSERT).bind(*values),
        ]
    )
    return Rotation(values[0], [row["kid"] for row in retired["results"]])
