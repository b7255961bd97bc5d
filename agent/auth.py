"""Who may call the agent: JWTs from the control plane, checked against its JWKS.

The key set is fetched with aiohttp and cached for JWKS_TTL_SECONDS. A token whose `kid`
is not in the cache triggers one refetch, at most once per UNKNOWN_KID_COOLDOWN_SECONDS,
so a key rotation on the control plane needs no agent restart and a flood of bogus kids
cannot hammer the control plane. The algorithm is pinned to ES256; `iss`, `aud`, `exp`
(and `nbf` when present) are checked, then the token's scope: `node` must be this node,
and a terminal token's `workspace` must be the workspace asked for.

    401 Unauthorized   no token, not a JWT, bad signature, expired, unknown kid, other alg
    403 Forbidden      a valid token for another audience, node or workspace
"""

import asyncio
import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import aiohttp
import jwt

from agent.errors import AuthUnavailable, Forbidden, Unauthorized

log = logging.getLogger("agent.auth")

ALGORITHM = "ES256"
CURVE = "P-256"
AGENT_AUDIENCE = "sam:agent"
TERMINAL_AUDIENCE = "sam:terminal"
LEEWAY_SECONDS = 30
JWKS_TTL_SECONDS = 300.0
UNKNOWN_KID_COOLDOWN_SECONDS = 30.0
# After a failed fetch, keep the cached keys and try again no sooner than this.
JWKS_RETRY_SECONDS = 10.0
MAX_JWKS_BYTES = 64 * 1024
MAX_TOKEN_BYTES = 8 * 1024
REQUIRED_CLAIMS = ("exp", "iss", "aud")

Clock = Callable[[], float]


class KeySet:
    """The control plane's ES256 public keys by kid, cached with a TTL."""

    def __init__(
        self,
        url: str,
        session: aiohttp.ClientSession,
        clock: Clock = time.monotonic,
        ttl_seconds: float = JWKS_TTL_SECONDS,
        cooldown_seconds: float = UNKNOWN_KID_COOLDOWN_SECONDS,
    ) -> None:
        self._url = url
        self._session = session
        self._clock = clock
        self._ttl_seconds = ttl_seconds
        self._cooldown_seconds = cooldown_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched = False
        self._refresh_at = float("-inf")
        self._unknown_kid_fetch_at = float("-inf")
        self._lock = asyncio.Lock()

    @property
    def kids(self) -> list[str]:
        return sorted(self._keys)

    async def refresh(self) -> None:
        """Fetch the key set now if the cached one is stale (at start, so the first request
        does not wait on the control plane); failures are logged, not raised."""
        await self._refresh("", reason="ttl")

    async def key(self, kid: str) -> jwt.PyJWK:
        """The key for `kid`; raises Unauthorized when the control plane does not know it."""
        fresh = self._clock() >= self._refresh_at and await self._refresh(kid, reason="ttl")
        # A set fetched for this very call already answers whether the kid is known.
        if not fresh and kid not in self._keys:
            await self._refresh(kid, reason="unknown_kid")
        if not self._fetched:
            raise AuthUnavailable(
                f"the control plane's keys could not be fetched from {self._url}: check that "
                "the control plane is reachable from this node, then retry"
            )
        found = self._keys.get(kid)
        if found is None:
            raise Unauthorized(f"the token's signing key {kid!r} is unknown")
        return found

    async def _refresh(self, kid: str, reason: str) -> bool:
        """Fetch the key set unless another request just did or the cooldown forbids it;
        True when this call fetched it."""
        async with self._lock:
            # Another request may have refreshed while this one waited for the lock.
            now = self._clock()
            if reason == "ttl" and now < self._refresh_at:
                return False
            if reason == "unknown_kid":
                if kid in self._keys or now < self._unknown_kid_fetch_at + self._cooldown_seconds:
                    return False
                self._unknown_kid_fetch_at = now
            try:
                self._keys = await self._fetch()
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                self._refresh_at = now + JWKS_RETRY_SECONDS
                log.warning(
                    "jwks.fetch_failed url=%s reason=%s kept=%d error=%r",
                    self._url,
                    reason,
                    len(self._keys),
                    exc,
                )
                return True
            self._fetched = True
            self._refresh_at = now + self._ttl_seconds
            log.info("jwks.fetched reason=%s kids=%s", reason, ",".join(self.kids))
            return True

    async def _fetch(self) -> dict[str, jwt.PyJWK]:
        async with self._session.get(self._url) as response:
            if response.status != 200:
                raise ValueError(f"GET {self._url} answered {response.status}")
            raw = b""
            async for chunk in response.content.iter_chunked(MAX_JWKS_BYTES):
                raw += chunk
                if len(raw) > MAX_JWKS_BYTES:
                    raise ValueError(f"the JWKS is over {MAX_JWKS_BYTES} bytes")
        document = json.loads(raw)
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError("the JWKS has no 'keys' list")
        return _usable_keys(document["keys"])


def _usable_keys(entries: list[Any]) -> dict[str, jwt.PyJWK]:
    """Only P-256 EC keys with a kid can verify an ES256 token; others are skipped."""
    keys: dict[str, jwt.PyJWK] = {}
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("kid"), str):
            continue
        if entry.get("kty") != "EC" or entry.get("crv") != CURVE:
            continue
        if entry.get("alg", ALGORITHM) != ALGORITHM or entry.get("use", "sig") != "sig":
            continue
        try:
            keys[entry["kid"]] = jwt.PyJWK(entry, algorithm=ALGORITHM)
        except (jwt.PyJWKError, jwt.InvalidKeyError, ValueError) as exc:
            log.warning("jwks.key_skipped kid=%s error=%s", entry["kid"], exc)
    return keys


@dataclass(frozen=True)
class Principal:
    """Who a verified token speaks for."""

    audience: str
    node: str
    workspace: str | None
    subject: str | None
    claims: dict[str, Any]


class TokenVerifier:
    def __init__(self, keys: KeySet, issuer: str, node_id: str) -> None:
        self._keys = keys
        self._issuer = issuer
        self._node_id = node_id

    async def verify(
        self, token: str, audiences: Collection[str], workspace: str | None = None
    ) -> Principal:
        """A Principal for a token valid for one of `audiences` on this node (and, for a
        terminal token, for `workspace`); raises Unauthorized (401) or Forbidden (403)."""
        claims = await self._verified_claims(token)
        audience = _audience(claims.get("aud"), audiences)
        if audience is None:
            raise Forbidden(f"the token's audience {claims.get('aud')!r} may not call this")
        node = claims.get("node")
        if node != self._node_id:
            raise Forbidden(f"the token is for node {node!r}, this is {self._node_id!r}")
        if audience == TERMINAL_AUDIENCE and claims.get("workspace") != workspace:
            raise Forbidden(
                f"the token is for workspace {claims.get('workspace')!r}, not {workspace!r}"
            )
        return Principal(audience, node, claims.get("workspace"), claims.get("sub"), claims)

    async def _verified_claims(self, token: str) -> dict[str, Any]:
        if len(token) > MAX_TOKEN_BYTES:
            raise Unauthorized(f"the token is over {MAX_TOKEN_BYTES} bytes")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the token is not a JWT: {exc}") from None
        if header.get("alg") != ALGORITHM:
            raise Unauthorized(f"the token's algorithm {header.get('alg')!r} is not {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise Unauthorized("the token has no 'kid' header")
        key = await self._keys.key(kid)
        try:
            return jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS), "verify_aud": False},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized(
                "the token has expired: ask the control plane for a new one"
            ) from None
        except jwt.ImmatureSignatureError:
            raise Unauthorized("the token is not valid yet (nbf/iat in the future)") from None
        except jwt.InvalidIssuerError:
            raise Unauthorized(f"the token was not issued by {self._issuer}") from None
        except jwt.InvalidTokenError as exc:
            raise Unauthorized(f"the token is invalid: {exc}") from None


def _audience(claim: Any, accepted: Collection[str]) -> str | None:
    """The first of the token's audiences this route accepts (`aud` is a string or list)."""
    audiences = [claim] if isinstance(claim, str) else claim if isinstance(claim, list) else []
    return next((aud for aud in audiences if aud in accepted), None)


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None
