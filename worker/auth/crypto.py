"""Everything the Worker signs, verifies, seals or opens, over WebCrypto.

WebCrypto (`subtle` from worker/platform.py: `crypto.subtle` on Cloudflare, the twin's
stand-in on `cryptography` locally) is the only crypto a Python Worker has: `cryptography`
has no Pyodide build. Its operations are async, so these are too.

ES256 signing keys (the control plane's JWTs, worker/auth/jws.py):

    await new_signing_key()                      -> NewSigningKey(pkcs8, public_jwk)
    await sign_es256(pkcs8, data)                -> 64-byte signature, r||s
    await verify_es256(public_jwk, signature, data) -> bool

RS256 (RSASSA-PKCS1-v1_5 / SHA-256), for the GitHub App's JWT (worker/github/app_jwt.py):

    await sign_rs256(pkcs8, data)                -> the signature (the modulus' size)

Secrets at rest, AES-256-GCM with a random nonce per value, owner and kind bound in:

    cipher = Cipher.from_config(config)                 key from SAM_ENCRYPTION_KEY
    sealed = await cipher.seal(owner, kind, plaintext)  -> Sealed(nonce, ciphertext)
    await cipher.open(owner, kind, sealed)              -> plaintext, or DecryptionError

The owner (a user id, or "system" for the control plane's own keys) and the kind are the
GCM associated data: they are not stored in the ciphertext but must be given again to
open it, so a ciphertext copied into another user's row, or relabelled as another kind,
fails authentication instead of decrypting for the wrong person.
"""

import base64
import binascii
import json
import os
from dataclasses import dataclass
from typing import Any

from worker.config import Config, ConfigError
from worker.platform import WebCryptoError, subtle

KEY_VAR = "SAM_ENCRYPTION_KEY"
KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96 bits, GCM's native nonce size
# Versioned so a later key-rotation scheme can change the binding without ambiguity.
AAD_VERSION = "sam-secret-v1"
SYSTEM_OWNER = "system"

ECDSA_P256 = {"name": "ECDSA", "namedCurve": "P-256"}
ECDSA_SHA256 = {"name": "ECDSA", "hash": "SHA-256"}
RSASSA_SHA256 = {"name": "RSASSA-PKCS1-v1_5", "hash": "SHA-256"}
# The members of a published EC public key; WebCrypto's export adds `ext` and `key_ops`.
PUBLIC_JWK_MEMBERS = ("kty", "crv", "x", "y")


@dataclass(frozen=True)
class NewSigningKey:
    pkcs8: bytes  # the private key, PKCS #8 DER: the form it is sealed and stored in
    public_jwk: dict[str, Any]  # kty, crv, x, y


async def new_signing_key() -> NewSigningKey:
    """A fresh ECDSA P-256 key pair."""
    pair = await subtle.generateKey(ECDSA_P256, True, ["sign", "verify"])
    pkcs8 = await subtle.exportKey("pkcs8", pair.privateKey)
    exported = await subtle.exportKey("jwk", pair.publicKey)
    return NewSigningKey(pkcs8, {name: exported[name] for name in PUBLIC_JWK_MEMBERS})


async def sign_es256(pkcs8: bytes, data: bytes) -> bytes:
    """ECDSA P-256 / SHA-256 over `data`, as JWS ES256 wants it (r||s, 64 bytes)."""
    key = await subtle.importKey("pkcs8", pkcs8, ECDSA_P256, False, ["sign"])
    return await subtle.sign(ECDSA_SHA256, key, data)


async def verify_es256(public_jwk: dict[str, Any], signature: bytes, data: bytes) -> bool:
    """Whether `signature` (r||s) over `data` was made by the key `public_jwk` publishes."""
    jwk = {name: public_jwk[name] for name in PUBLIC_JWK_MEMBERS}
    key = await subtle.importKey("jwk", jwk, ECDSA_P256, False, ["verify"])
    return await subtle.verify(ECDSA_SHA256, key, signature, data)


async def sign_rs256(pkcs8: bytes, data: bytes) -> bytes:
    """RSASSA-PKCS1-v1_5 / SHA-256 over `data` with the RSA key `pkcs8` (PKCS #8 DER)."""
    key = await subtle.importKey("pkcs8", pkcs8, RSASSA_SHA256, False, ["sign"])
    return await subtle.sign({"name": RSASSA_SHA256["name"]}, key, data)


class DecryptionError(Exception):
    """A sealed value did not authenticate: wrong key, owner, kind, or tampered bytes."""


@dataclass(frozen=True)
class Sealed:
    nonce: bytes
    ciphertext: bytes  # includes GCM's 16-byte tag


def generate_key() -> str:
    """A fresh key in the form SAM_ENCRYPTION_KEY takes (base64url, 32 bytes)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def parse_key(value: str | None) -> bytes:
    """The 32 key bytes of SAM_ENCRYPTION_KEY; ConfigError names what is wrong.

    base64url is the documented form; standard base64 (what `openssl rand -base64 32`
    prints) is accepted too, as the two differ only in two characters.
    """
    hint = (
        f"set {KEY_VAR} to 32 random bytes in base64url, e.g. the output of "
        '`python -c "import base64,os;print(base64.urlsafe_b64encode(os.urandom(32)).decode())"`'
    )
    if not value or not value.strip():
        raise ConfigError(f"{KEY_VAR} is not set: {hint}")
    text = value.strip()
    try:
        standard = text.replace("-", "+").replace("_", "/")
        key = base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{KEY_VAR} is not valid base64url: {hint}") from None
    if len(key) != KEY_BYTES:
        raise ConfigError(f"{KEY_VAR} decodes to {len(key)} bytes, not {KEY_BYTES}: {hint}")
    return key


_AES_USAGES = ["encrypt", "decrypt"]


def _associated_data(owner: str, kind: str) -> bytes:
    assert owner and kind, "a sealed value is always bound to an owner and a kind"
    # JSON keeps the fields apart whatever characters they hold ("a:b","c" != "a","b:c").
    return json.dumps([AAD_VERSION, owner, kind], separators=(",", ":")).encode()


class Cipher:
    def __init__(self, key: bytes) -> None:
        assert len(key) == KEY_BYTES, "use parse_key() to turn a setting into a key"
        self._key = key

    @classmethod
    def from_config(cls, config: Config) -> "Cipher":
        return cls(parse_key(config.encryption_key))

    async def _aes_key(self) -> Any:
        return await subtle.importKey("raw", self._key, {"name": "AES-GCM"}, False, _AES_USAGES)

    async def seal(self, owner: str, kind: str, plaintext: bytes) -> Sealed:
        nonce = os.urandom(NONCE_BYTES)
        gcm = {"name": "AES-GCM", "iv": nonce, "additionalData": _associated_data(owner, kind)}
        return Sealed(nonce, await subtle.encrypt(gcm, await self._aes_key(), plaintext))

    async def open(self, owner: str, kind: str, sealed: Sealed) -> bytes:
        if len(sealed.nonce) != NONCE_BYTES:
            raise DecryptionError(f"the stored nonce is {len(sealed.nonce)} bytes, not 12")
        gcm = {
            "name": "AES-GCM",
            "iv": sealed.nonce,
            "additionalData": _associated_data(owner, kind),
        }
        try:
            return await subtle.decrypt(gcm, await self._aes_key(), sealed.ciphertext)
        except WebCryptoError as exc:
            if exc.name != "OperationError":
                raise
            raise DecryptionError(
                f"a sealed {kind} value of {owner} did not authenticate: it was changed, "
                f"moved from another row, or sealed under another {KEY_VAR}"
            ) from None


# D1 sends and takes BLOBs as arrays of byte values (a typed array has not always been
# accepted as a binding), so sealed values cross the D1 boundary as lists.
def to_blob(data: bytes) -> list[int]:
    return list(data)


def from_blob(value: Any) -> bytes:
    return bytes(value)
