"""The GitHub App's private key, from the PEM GitHub hands out to the PKCS #8 DER WebCrypto takes.

GitHub's "Generate a private key" downloads PKCS #1 (`-----BEGIN RSA PRIVATE KEY-----`);
WebCrypto imports only PKCS #8 (`-----BEGIN PRIVATE KEY-----`, what `openssl pkcs8 -topk8`
makes of it). Both are accepted: PKCS #1 is wrapped in the PKCS #8 envelope here, which is
plain DER (RFC 5208 §5, RFC 8017 appendix C), so no crypto library is needed for it.

    der = pkcs8_der(pem_text)        ValueError saying what is wrong, never quoting the key
"""

import base64
import binascii
import re

PKCS1_LABEL = "RSA PRIVATE KEY"
PKCS8_LABEL = "PRIVATE KEY"
_PEM = re.compile(r"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.DOTALL)
# AlgorithmIdentifier { rsaEncryption (1.2.840.113549.1.1.1), NULL }, DER-encoded.
_RSA_ALGORITHM = bytes.fromhex("300d06092a864886f70d0101010500")
_VERSION_0 = bytes.fromhex("020100")
_SEQUENCE, _OCTET_STRING = 0x30, 0x04


def pkcs8_der(pem: str) -> bytes:
    """The PKCS #8 DER bytes of an RSA private key in PEM (PKCS #1 or PKCS #8)."""
    # A key pasted into a one-line setting often arrives with its newlines as "\n".
    match = _PEM.search(pem.replace("\\n", "\n"))
    if match is None:
        raise ValueError("it is not a PEM private key (-----BEGIN RSA PRIVATE KEY----- …)")
    label, body = match.group(1), "".join(match.group(2).split())
    if label not in (PKCS1_LABEL, PKCS8_LABEL):
        raise ValueError(f"it is a PEM {label!r}, not the RSA private key GitHub generates")
    try:
        der = base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("its PEM body is not valid base64") from None
    if not der or der[0] != _SEQUENCE:
        raise ValueError("its PEM body is not a DER-encoded key")
    if label == PKCS8_LABEL:
        return der
    return _tlv(_SEQUENCE, _VERSION_0 + _RSA_ALGORITHM + _tlv(_OCTET_STRING, der))


def _tlv(tag: int, value: bytes) -> bytes:
    """One DER element: tag, definite length (short or long form), value."""
    size = len(value)
    if size < 0x80:
        return bytes([tag, size]) + value
    length = size.to_bytes((size.bit_length() + 7) // 8, "big")
    return bytes([tag, 0x80 | len(length)]) + length + value
