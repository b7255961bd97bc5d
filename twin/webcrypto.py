"""WebCrypto's `crypto.subtle` on CPython, implemented with `cryptography`.

The Worker's crypto is written against WebCrypto, which is all a Python Worker has on
Cloudflare (no `cryptography` wheel exists for Pyodide). This is the same API for the twin,
keeping WebCrypto's observable behaviour for the subset a Worker may use here:

    ECDSA P-256   generateKey · importKey pkcs8 (private) / jwk (public) · exportKey
                  pkcs8 / jwk · sign / verify with SHA-256, signatures raw r||s (64 bytes)
    AES-GCM       importKey raw (128/192/256 bits) · encrypt / decrypt with `iv`,
                  `additionalData`, a 128-bit tag appended to the ciphertext
    RSASSA-PKCS1-v1_5 with SHA-256 (RS256)
                  importKey pkcs8 (private) / spki or jwk (public) · sign / verify

Methods are coroutines with WebCrypto's names and arguments (algorithms as dicts, key data
as bytes or a JWK dict). Failures raise `DOMException` with WebCrypto's error names:
`OperationError` (a ciphertext that does not authenticate), `DataError` (key data that is
not a key of that algorithm), `InvalidAccessError` (a key used for what its usages or
`extractable` forbid), `NotSupportedError` (anything outside the subset above).
"""

import base64
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

P256_COORDINATE_BYTES = 32
AES_KEY_BYTES = (16, 24, 32)
GCM_TAG_BITS = 128
RSASSA = "RSASSA-PKCS1-v1_5"


class DOMException(Exception):
    """What a rejected WebCrypto promise carries; `name` is the error's kind."""

    def __init__(self, name: str, message: str) -> None:
        super().__init__(f"{name}: {message}")
        self.name = name
        self.message = message


@dataclass(frozen=True, eq=False)
class CryptoKey:
    type: str  # "private", "public" or "secret"
    extractable: bool
    algorithm: dict[str, Any]
    usages: tuple[str, ...]
    handle: Any  # the `cryptography` key (or the AES key bytes)


@dataclass(frozen=True)
class CryptoKeyPair:
    privateKey: CryptoKey
    publicKey: CryptoKey


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _ecdsa_p256(algorithm: dict[str, Any]) -> dict[str, Any]:
    if algorithm.get("name") != "ECDSA" or algorithm.get("namedCurve") != "P-256":
        raise DOMException("NotSupportedError", f"only ECDSA on P-256 is modelled: {algorithm}")
    return {"name": "ECDSA", "namedCurve": "P-256"}


def _algorithm_name(algorithm: dict[str, Any] | str) -> str | None:
    # WebCrypto takes an algorithm as a dict or as its bare name.
    return algorithm if isinstance(algorithm, str) else algorithm.get("name")


def _import_rsa(
    format: str,
    key_data: bytes | dict[str, Any],
    algorithm: dict[str, Any],
    extractable: bool,
    usages: list[str],
) -> CryptoKey:
    """An RSASSA-PKCS1-v1_5 key; its hash is fixed at import, as in WebCrypto."""
    hash_name = algorithm.get("hash")
    hash_name = hash_name.get("name") if isinstance(hash_name, dict) else hash_name
    if hash_name != "SHA-256":
        raise DOMException("NotSupportedError", f"only {RSASSA} with SHA-256: {algorithm}")
    shape = {"name": RSASSA, "hash": {"name": "SHA-256"}}
    try:
        if format == "pkcs8" and isinstance(key_data, bytes):
            handle: Any = serialization.load_der_private_key(key_data, password=None)
            kind = "private"
        elif format == "spki" and isinstance(key_data, bytes):
            handle, kind = serialization.load_der_public_key(key_data), "public"
        elif format == "jwk" and isinstance(key_data, dict) and "d" not in key_data:
            if key_data.get("kty") != "RSA":
                raise DOMException("DataError", "the JWK is not an RSA key")
            numbers = rsa.RSAPublicNumbers(
                int.from_bytes(_unb64url(key_data["e"]), "big"),
                int.from_bytes(_unb64url(key_data["n"]), "big"),
            )
            handle, kind = numbers.public_key(), "public"
        else:
            raise DOMException("NotSupportedError", f"importKey {format!r} of {RSASSA}")
    except (KeyError, TypeError, ValueError):
        raise DOMException("DataError", f"the {format} data is not an RSA key") from None
    if not isinstance(handle, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        raise DOMException("DataError", f"the {format} key is not an RSA key")
    shape["modulusLength"] = handle.key_size
    return CryptoKey(kind, extractable, shape, tuple(usages), handle)


def _require(key: CryptoKey, usage: str, algorithm: str) -> None:
    if key.algorithm["name"] != algorithm:
        raise DOMException("InvalidAccessError", f"the key is not an {algorithm} key")
    if usage not in key.usages:
        raise DOMException("InvalidAccessError", f"the key's usages do not include {usage}")


class SubtleCrypto:
    async def generateKey(
        self, algorithm: dict[str, Any], extractable: bool, usages: list[str]
    ) -> CryptoKeyPair:
        shape = _ecdsa_p256(algorithm)
        private = ec.generate_private_key(ec.SECP256R1())
        # As in WebCrypto, the public half is always extractable.
        return CryptoKeyPair(
            CryptoKey(
                "private", extractable, shape, ("sign",) if "sign" in usages else (), private
            ),
            CryptoKey(
                "public",
                True,
                shape,
                ("verify",) if "verify" in usages else (),
                private.public_key(),
            ),
        )

    async def importKey(
        self,
        format: str,
        keyData: bytes | dict[str, Any],
        algorithm: dict[str, Any],
        extractable: bool,
        usages: list[str],
    ) -> CryptoKey:
        if algorithm.get("name") == "AES-GCM" and format == "raw":
            assert isinstance(keyData, bytes)
            if len(keyData) not in AES_KEY_BYTES:
                raise DOMException("DataError", f"an AES key is not {len(keyData)} bytes")
            shape = {"name": "AES-GCM", "length": len(keyData) * 8}
            return CryptoKey("secret", extractable, shape, tuple(usages), bytes(keyData))
        if algorithm.get("name") == RSASSA:
            return _import_rsa(format, keyData, algorithm, extractable, usages)
        shape = _ecdsa_p256(algorithm)
        if format == "pkcs8":
            assert isinstance(keyData, bytes)
            try:
                private = serialization.load_der_private_key(keyData, password=None)
            except ValueError:
                raise DOMException("DataError", "the data is not a PKCS #8 private key") from None
            if not isinstance(private, ec.EllipticCurvePrivateKey) or not isinstance(
                private.curve, ec.SECP256R1
            ):
                raise DOMException("DataError", "the PKCS #8 key is not an ECDSA P-256 key")
            return CryptoKey("private", extractable, shape, tuple(usages), private)
        if format == "jwk":
            assert isinstance(keyData, dict)
            if "d" in keyData:
                raise DOMException("NotSupportedError", "only public JWKs are modelled")
            if keyData.get("kty") != "EC" or keyData.get("crv") != "P-256":
                raise DOMException("DataError", "the JWK is not an EC P-256 key")
            try:
                x, y = _unb64url(keyData["x"]), _unb64url(keyData["y"])
                numbers = ec.EllipticCurvePublicNumbers(
                    int.from_bytes(x, "big"), int.from_bytes(y, "big"), ec.SECP256R1()
                )
                public = numbers.public_key()
            except (KeyError, TypeError, ValueError):
                raise DOMException("DataError", "the JWK's x and y are not a P-256 point") from None
            return CryptoKey("public", extractable, shape, tuple(usages), public)
        raise DOMException("NotSupportedError", f"importKey {format!r} of {algorithm}")

    async def exportKey(self, format: str, key: CryptoKey) -> bytes | dict[str, Any]:
        if not key.extractable:
            raise DOMException("InvalidAccessError", "the key is not extractable")
        if format == "raw" and key.type == "secret":
            return key.handle
        if format == "pkcs8" and key.type == "private":
            return key.handle.private_bytes(
                serialization.Encoding.DER,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        if format == "jwk" and key.type == "public":
            numbers = key.handle.public_numbers()
            return {
                "kty": "EC",
                "crv": "P-256",
                "x": _b64url(numbers.x.to_bytes(P256_COORDINATE_BYTES, "big")),
                "y": _b64url(numbers.y.to_bytes(P256_COORDINATE_BYTES, "big")),
                "ext": True,
                "key_ops": list(key.usages),
            }
        raise DOMException("NotSupportedError", f"exportKey {format!r} of a {key.type} key")

    async def sign(self, algorithm: dict[str, Any], key: CryptoKey, data: bytes) -> bytes:
        if _algorithm_name(algorithm) == RSASSA:
            _require(key, "sign", RSASSA)
            return key.handle.sign(bytes(data), padding.PKCS1v15(), hashes.SHA256())
        _require(key, "sign", "ECDSA")
        if algorithm != {"name": "ECDSA", "hash": "SHA-256"}:
            raise DOMException("NotSupportedError", f"sign with {algorithm}")
        der = key.handle.sign(bytes(data), ec.ECDSA(hashes.SHA256()))
        # `cryptography` encodes the signature in DER; WebCrypto gives r||s, as JWS wants.
        r, s = decode_dss_signature(der)
        return r.to_bytes(P256_COORDINATE_BYTES, "big") + s.to_bytes(P256_COORDINATE_BYTES, "big")

    async def verify(
        self, algorithm: dict[str, Any], key: CryptoKey, signature: bytes, data: bytes
    ) -> bool:
        if _algorithm_name(algorithm) == RSASSA:
            _require(key, "verify", RSASSA)
            try:
                key.handle.verify(
                    bytes(signature), bytes(data), padding.PKCS1v15(), hashes.SHA256()
                )
            except InvalidSignature:
                return False
            return True
        _require(key, "verify", "ECDSA")
        if algorithm != {"name": "ECDSA", "hash": "SHA-256"}:
            raise DOMException("NotSupportedError", f"verify with {algorithm}")
        if len(signature) != 2 * P256_COORDINATE_BYTES:
            return False  # WebCrypto answers false, not an error, for a malformed signature
        r = int.from_bytes(signature[:P256_COORDINATE_BYTES], "big")
        s = int.from_bytes(signature[P256_COORDINATE_BYTES:], "big")
        try:
            key.handle.verify(encode_dss_signature(r, s), bytes(data), ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            return False
        return True

    async def encrypt(self, algorithm: dict[str, Any], key: CryptoKey, data: bytes) -> bytes:
        _require(key, "encrypt", "AES-GCM")
        iv, associated = self._gcm(algorithm)
        return AESGCM(key.handle).encrypt(iv, bytes(data), associated)

    async def decrypt(self, algorithm: dict[str, Any], key: CryptoKey, data: bytes) -> bytes:
        _require(key, "decrypt", "AES-GCM")
        iv, associated = self._gcm(algorithm)
        try:
            return AESGCM(key.handle).decrypt(iv, bytes(data), associated)
        except InvalidTag:
            raise DOMException("OperationError", "the data did not authenticate") from None

    @staticmethod
    def _gcm(algorithm: dict[str, Any]) -> tuple[bytes, bytes | None]:
        if algorithm.get("name") != "AES-GCM" or algorithm.get("tagLength", GCM_TAG_BITS) != 128:
            raise DOMException("NotSupportedError", f"only AES-GCM with 128-bit tags: {algorithm}")
        iv = algorithm.get("iv")
        if not iv:
            raise DOMException("OperationError", "AES-GCM needs an iv")
        associated = algorithm.get("additionalData")
        return bytes(iv), None if associated is None else bytes(associated)


subtle = SubtleCrypto()
