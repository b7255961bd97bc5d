"""ES256 JWTs in JWS compact serialisation (RFC 7515, 7519): header.payload.signature.
(And RS256 ones signed for GitHub, which verifies them: `sign_rs256`.)

Written here, small, because no library does it over async WebCrypto under Pyodide: PyJWT
and its peers sign synchronously with `cryptography`, which has no Pyodide build. Only
ES256 is spoken, so `alg` is pinned when a token is read, before any key is looked up:
`none` and HMAC-with-the-public-key forgeries never reach a key.

    token = await sign(claims, pkcs8, kid)      header {"alg": "ES256", "kid", "typ": "JWT"}
    token = await sign_rs256(claims, pkcs8)     header {"alg": "RS256", "typ": "JWT"}
    jws = parse(token)                          -> Jws(header, claims, signing input, signature)
    claims = await verify(jws, public_jwk, issuer=…, audience=…, now=…, leeway=…, required=…)

Anything malformed, forged, expired or meant for someone else raises InvalidToken with the
reason. Times are checked against the `now` the caller passes (the deployment's clock).
"""

import base64
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from worker.auth import crypto
from worker.errors import Unauthorized

ALGORITHM = "ES256"
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_TIME_CLAIMS = ("iat", "nbf", "exp")


class InvalidToken(Unauthorized):
    def __init__(self, reason: str) -> None:
        super().__init__("invalid_token", f"The token was refused: {reason}.")


@dataclass(frozen=True)
class Jws:
    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes


def _encode(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _decode(segment: str) -> bytes:
    if not _BASE64URL.fullmatch(segment) or len(segment) % 4 == 1:
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _json_object(segment: str) -> dict[str, Any]:
    value = json.loads(_decode(segment))
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    return value


async def sign(claims: dict[str, Any], pkcs8: bytes, kid: str) -> str:
    """`claims` signed with the private key `pkcs8` (PKCS #8 DER), `kid` in the header."""
    header = {"alg": ALGORITHM, "kid": kid, "typ": "JWT"}
    return await _signed(header, claims, lambda data: crypto.sign_es256(pkcs8, data))


async def sign_rs256(claims: dict[str, Any], pkcs8: bytes) -> str:
    """`claims` signed with the RSA private key `pkcs8` (PKCS #8 DER): a GitHub App JWT."""
    header = {"alg": "RS256", "typ": "JWT"}
    return await _signed(header, claims, lambda data: crypto.sign_rs256(pkcs8, data))


async def _signed(
    header: dict[str, Any],
    claims: dict[str, Any],
    signer: Callable[[bytes], Awaitable[bytes]],
) -> str:
    signing_input = f"{_encode(header)}.{_encode(claims)}"
    signature = await signer(signing_input.encode())
    return f"{signing_input}.{base64.urlsafe_b64encode(signature).rstrip(b'=').decode()}"


def parse(token: str) -> Jws:
    """The parts of a compact ES256 JWS, unverified; InvalidToken if it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("it is not a JWT")
    try:
        header = _json_object(parts[0])
        claims = _json_object(parts[1])
        signature = _decode(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("it is not a JWT") from None
    if header.get("alg") != ALGORITHM:
        raise InvalidToken(f"its algorithm must be {ALGORITHM}")
    return Jws(header, claims, f"{parts[0]}.{parts[1]}".encode(), signature)


def _number(claims: dict[str, Any], name: str) -> float | None:
    value = claims.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidToken(f"it did not verify (its {name!r} claim is not a number)")
    return value


async def verify(
    jws: Jws,
    public_jwk: dict[str, Any],
    *,
    issuer: str,
    audience: str,
    now: float,
    leeway: float,
    required: tuple[str, ...],
) -> dict[str, Any]:
    """The claims, once the signature is `public_jwk`'s and `iss`, `aud` (one string, equal
    to `audience`), `iat`, `nbf` and `exp` hold at `now` give or take `leeway` seconds."""
    if not await crypto.verify_es256(public_jwk, jws.signature, jws.signing_input):
        raise InvalidToken("it did not verify (the signature does not match)")
    claims = jws.claims
    for name in required:
        if name not in claims:
            raise InvalidToken(f"it did not verify (it has no {name!r} claim)")
    issued, not_before, expires = (_number(claims, name) for name in _TIME_CLAIMS)
    if issued is not None and issued > now + leeway:
        raise InvalidToken("it was issued in the future")
    if not_before is not None and not_before > now + leeway:
        raise InvalidToken("it is not valid yet")
    if expires is not None and expires <= now - leeway:
        raise InvalidToken("it has expired")
    if "iss" in claims and claims["iss"] != issuer:
        raise InvalidToken("another issuer signed it")
    if "aud" in claims and claims["aud"] != audience:
        raise InvalidToken(f"it is not a {audience} token")
    return claims
