"""The Worker's crypto seam run under real Pyodide (WebCrypto through `js.crypto.subtle`),
for the shared test vectors in tests/pyodide/test_crypto.py.

`call(name, arguments)` takes and answers JSON text; bytes cross as standard base64.
A refused token or a sealed value that does not open is an answer (`refused`), not an error.
"""

import base64
import json
from typing import Any

from worker.auth import crypto, jws
from worker.github.private_key import pkcs8_der


def _bytes(text: str) -> bytes:
    return base64.b64decode(text)


def _text(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def new_signing_key() -> dict[str, Any]:
    key = await crypto.new_signing_key()
    return {"pkcs8": _text(key.pkcs8), "public_jwk": key.public_jwk}


async def sign(claims: dict[str, Any], pkcs8: str, kid: str) -> str:
    return await jws.sign(claims, _bytes(pkcs8), kid)


async def sign_rs256(claims: dict[str, Any], pem: str) -> str:
    """A GitHub App JWT, from the key in the PEM form the App's settings take."""
    return await jws.sign_rs256(claims, pkcs8_der(pem))


async def verify(token: str, public_jwk: dict[str, Any], **checks: Any) -> dict[str, Any]:
    try:
        parsed = jws.parse(token)
        claims = await jws.verify(
            parsed, public_jwk, required=tuple(checks.pop("required")), **checks
        )
    except jws.InvalidToken as refused:
        return {"refused": refused.message}
    return {"claims": claims}


async def seal(key: str, owner: str, kind: str, plaintext: str) -> dict[str, str]:
    sealed = await crypto.Cipher(_bytes(key)).seal(owner, kind, _bytes(plaintext))
    return {"nonce": _text(sealed.nonce), "ciphertext": _text(sealed.ciphertext)}


async def open(key: str, owner: str, kind: str, nonce: str, ciphertext: str) -> dict[str, str]:
    sealed = crypto.Sealed(_bytes(nonce), _bytes(ciphertext))
    try:
        return {"plaintext": _text(await crypto.Cipher(_bytes(key)).open(owner, kind, sealed))}
    except crypto.DecryptionError as refused:
        return {"refused": str(refused)}


FUNCTIONS = {
    "new_signing_key": new_signing_key,
    "sign": sign,
    "sign_rs256": sign_rs256,
    "verify": verify,
    "seal": seal,
    "open": open,
}


async def call(name: str, arguments: str) -> str:
    return json.dumps(await FUNCTIONS[name](**json.loads(arguments)))
