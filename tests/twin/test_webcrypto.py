"""twin/webcrypto.py keeps WebCrypto's observable behaviour: raw r||s ECDSA signatures,
key usages and extractability enforced, WebCrypto's error names. (That it agrees with a
real WebCrypto is tests/pyodide/test_crypto.py's business.)"""

import base64

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from twin.webcrypto import DOMException, subtle

P256 = {"name": "ECDSA", "namedCurve": "P-256"}
SHA256 = {"name": "ECDSA", "hash": "SHA-256"}


async def test_ecdsa_signatures_are_raw_r_and_s() -> None:
    pair = await subtle.generateKey(P256, True, ["sign", "verify"])
    signature = await subtle.sign(SHA256, pair.privateKey, b"data")

    assert len(signature) == 64
    assert await subtle.verify(SHA256, pair.publicKey, signature, b"data")
    assert not await subtle.verify(SHA256, pair.publicKey, signature, b"other")
    assert not await subtle.verify(SHA256, pair.publicKey, signature[:-1], b"data")
    # The same signature in DER, as `cryptography` makes it, verifies there too.
    r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
    pair.publicKey.handle.verify(encode_dss_signature(r, s), b"data", ec.ECDSA(hashes.SHA256()))


async def test_keys_round_trip_through_pkcs8_and_a_public_jwk() -> None:
    pair = await subtle.generateKey(P256, True, ["sign", "verify"])
    pkcs8 = await subtle.exportKey("pkcs8", pair.privateKey)
    jwk = await subtle.exportKey("jwk", pair.publicKey)
    assert {"kty": "EC", "crv": "P-256"}.items() <= jwk.items() and "d" not in jwk

    private = await subtle.importKey("pkcs8", pkcs8, P256, False, ["sign"])
    public = await subtle.importKey("jwk", jwk, P256, False, ["verify"])
    assert await subtle.verify(SHA256, public, await subtle.sign(SHA256, private, b"x"), b"x")


async def test_usages_and_extractability_are_enforced() -> None:
    der = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private = await subtle.importKey("pkcs8", der, P256, False, ["sign"])
    with pytest.raises(DOMException) as not_extractable:
        await subtle.exportKey("pkcs8", private)
    assert not_extractable.value.name == "InvalidAccessError"
    aes = await subtle.importKey("raw", b"k" * 32, {"name": "AES-GCM"}, False, ["encrypt"])
    with pytest.raises(DOMException) as no_usage:
        await subtle.decrypt({"name": "AES-GCM", "iv": b"n" * 12}, aes, b"c" * 32)
    assert no_usage.value.name == "InvalidAccessError"


async def test_aes_gcm_binds_the_additional_data() -> None:
    key = await subtle.importKey(
        "raw", b"k" * 32, {"name": "AES-GCM"}, False, ["encrypt", "decrypt"]
    )
    sealed = await subtle.encrypt(
        {"name": "AES-GCM", "iv": b"n" * 12, "additionalData": b"alice"}, key, b"secret"
    )
    opened = await subtle.decrypt(
        {"name": "AES-GCM", "iv": b"n" * 12, "additionalData": b"alice"}, key, sealed
    )
    assert opened == b"secret" and len(sealed) == len(b"secret") + 16
    with pytest.raises(DOMException) as refused:
        await subtle.decrypt(
            {"name": "AES-GCM", "iv": b"n" * 12, "additionalData": b"bob"}, key, sealed
        )
    assert refused.value.name == "OperationError"


async def test_bad_key_data_is_a_data_error() -> None:
    with pytest.raises(DOMException) as not_a_key:
        await subtle.importKey("pkcs8", b"not a key", P256, False, ["sign"])
    assert not_a_key.value.name == "DataError"
    with pytest.raises(DOMException) as off_curve:
        await subtle.importKey(
            "jwk", {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}, P256, False, ["verify"]
        )
    assert off_curve.value.name == "DataError"


RSASSA_SHA256 = {"name": "RSASSA-PKCS1-v1_5", "hash": "SHA-256"}


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def der(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


async def test_rsassa_pkcs1_v1_5_signs_and_verifies_with_spki_and_jwk() -> None:
    key = rsa_key()
    private = await subtle.importKey("pkcs8", der(key), RSASSA_SHA256, False, ["sign"])
    signature = await subtle.sign("RSASSA-PKCS1-v1_5", private, b"data")

    key.public_key().verify(signature, b"data", padding.PKCS1v15(), hashes.SHA256())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    numbers = key.public_key().public_numbers()
    jwk = {
        "kty": "RSA",
        "n": base64.urlsafe_b64encode(numbers.n.to_bytes(256, "big")).rstrip(b"=").decode(),
        "e": "AQAB",
    }
    for format, data in (("spki", spki), ("jwk", jwk)):
        public = await subtle.importKey(format, data, RSASSA_SHA256, False, ["verify"])
        assert await subtle.verify({"name": "RSASSA-PKCS1-v1_5"}, public, signature, b"data")
        assert not await subtle.verify({"name": "RSASSA-PKCS1-v1_5"}, public, signature, b"datA")
    # Only the sign usage was granted to the private key.
    with pytest.raises(DOMException) as refused:
        await subtle.verify({"name": "RSASSA-PKCS1-v1_5"}, private, signature, b"data")
    assert refused.value.name == "InvalidAccessError"


async def test_rsassa_refuses_other_keys_and_hashes() -> None:
    with pytest.raises(DOMException) as not_rsa:
        key = ec.generate_private_key(ec.SECP256R1())
        await subtle.importKey("pkcs8", der(key), RSASSA_SHA256, False, ["sign"])
    assert not_rsa.value.name == "DataError"
    with pytest.raises(DOMException) as garbage:
        await subtle.importKey("pkcs8", b"\x30\x03abc", RSASSA_SHA256, False, ["sign"])
    assert garbage.value.name == "DataError"
    sha1 = {"name": "RSASSA-PKCS1-v1_5", "hash": "SHA-1"}
    with pytest.raises(DOMException) as other_hash:
        await subtle.importKey("pkcs8", der(rsa_key()), sha1, False, ["sign"])
    assert other_hash.value.name == "NotSupportedError"
