"""Tokens signed with a running edge's own key, as the control plane signs them, and the
forgeries a verifier must refuse.

The edge keeps its signing keys in D1, sealed with SAM_ENCRYPTION_KEY (`sam dev` writes
that to `<data_dir>/dev-secrets.json`). `EdgeSigner` opens the same D1 file and mints
through worker/auth/scoped_tokens.py, so a token made here is exactly one the edge could have made:
only the claims (or the header) a test chooses are wrong.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from twin.d1 import D1Database
from twin.env import Env
from worker.auth import grants, keys, scoped_tokens
from worker.deployment import Deployment

EXPIRED_AGO_SECONDS = 3600  # well past the verifiers' 30 s leeway


def private_key_of(key: keys.ActiveKey) -> ec.EllipticCurvePrivateKey:
    """The edge's signing key as `cryptography` holds it, for PyJWT to sign with."""
    private_key = serialization.load_der_private_key(key.pkcs8, password=None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    return private_key


def _segment(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class EdgeSigner:
    def __init__(self, data_dir: Path, domain: str) -> None:
        secrets_file = json.loads((data_dir / "dev-secrets.json").read_text())
        self._database = D1Database(data_dir / "d1" / "sam.sqlite")
        self.env = Env(
            {
                "DATABASE": self._database,
                "SAM_DOMAIN": domain,
                "SAM_ENCRYPTION_KEY": secrets_file["SAM_ENCRYPTION_KEY"],
            }
        )
        self.deployment = Deployment.of(self.env)
        self.issuer = scoped_tokens.control_plane_url(self.deployment.config)

    def close(self) -> None:
        self._database.close()

    # --- what the control plane mints -----------------------------------------------------

    async def terminal(self, user_id: str, node_id: str, workspace_id: str, session: str) -> str:
        """A terminal token as POST /api/terminal/token gives the holder of `session`."""
        minted = await scoped_tokens.mint_terminal_token(
            self.deployment, user_id, node_id, workspace_id, grants.for_session(session)
        )
        return minted.token

    async def agent(self, node_id: str) -> str:
        return (await scoped_tokens.mint_agent_token(self.deployment, node_id)).token

    # --- forgeries ------------------------------------------------------------------------

    def claims(self, audience: str, **scope: str) -> dict[str, Any]:
        now = int(time.time())
        return {
            **scope,
            "iss": self.issuer,
            "aud": audience,
            "iat": now,
            "exp": now + scoped_tokens.TERMINAL_TOKEN_SECONDS,
            "jti": "test",
        }

    async def sign(self, claims: dict[str, Any], **header: Any) -> str:
        """`claims` signed with the edge's active key (its kid in the header)."""
        key = await keys.active_key(self.deployment)
        return jwt.encode(
            claims, private_key_of(key), algorithm="ES256", headers={"kid": key.kid, **header}
        )

    async def expired(self, claims: dict[str, Any]) -> str:
        past = int(time.time()) - EXPIRED_AGO_SECONDS
        return await self.sign({**claims, "iat": past - 60, "exp": past})

    async def unsigned(self, claims: dict[str, Any]) -> str:
        """`alg: none`, naming the real kid."""
        header = {"alg": "none", "typ": "JWT", "kid": await self._kid()}
        return f"{_segment(header)}.{_segment(claims)}."

    async def hmac_with_public_key(self, claims: dict[str, Any]) -> str:
        """HS256 keyed with the published public key's PEM: algorithm confusion."""
        key = await keys.active_key(self.deployment)
        pem = (
            private_key_of(key)
            .public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
        signing_input = f"{_segment(header)}.{_segment(claims)}"
        digest = hmac.new(pem, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"

    def unknown_kid(self, claims: dict[str, Any]) -> str:
        """ES256 by a key the edge never published, under a made-up kid."""
        stranger = ec.generate_private_key(ec.SECP256R1())
        return jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": "not-ours"})

    async def wrong_key_for_kid(self, claims: dict[str, Any]) -> str:
        """ES256 by a stranger's key under the edge's real kid."""
        stranger = ec.generate_private_key(ec.SECP256R1())
        kid = await self._kid()
        return jwt.encode(claims, stranger, algorithm="ES256", headers={"kid": kid})

    async def _kid(self) -> str:
        return (await keys.active_key(self.deployment)).kid
