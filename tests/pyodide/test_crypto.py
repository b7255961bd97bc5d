"""Shared test vectors for the Worker's crypto seam: WebCrypto under real Pyodide (the
harness's Node has `crypto.subtle`, as workerd has) and the twin's `cryptography` stand-in
in this process sign, verify, seal and open each other's output; PyJWT verifies what both
sign; a key sealed in D1 in the form stored today signs on both."""

import base64
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from tests.pyodide.harness import PyodideWorker
from worker.auth import crypto, jws
from worker.github.private_key import pkcs8_der

ISSUER = "https://api.example.com"
AUDIENCE = "sam:agent"
LEEWAY_SECONDS = 30
OWNER, KIND = "u_alice", "hetzner"
SECRET = b"hcloud-token-0123456789abcdef"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base = {"iss": ISSUER, "aud": AUDIENCE, "node": "n_1", "iat": now, "exp": now + 60, "jti": "j"}
    return {**base, **overrides}


def checks() -> dict[str, Any]:
    return {
        "issuer": ISSUER,
        "audience": AUDIENCE,
        "now": time.time(),
        "leeway": LEEWAY_SECONDS,
        "required": ["iss", "aud", "iat", "exp", "jti"],
    }


async def verify_here(token: str, public_jwk: dict[str, Any]) -> dict[str, Any]:
    check = checks()
    required = tuple(check.pop("required"))
    return await jws.verify(jws.parse(token), public_jwk, required=required, **check)


def pyjwt_verifies(token: str, public_jwk: dict[str, Any]) -> dict[str, Any]:
    key = jwt.PyJWK({**public_jwk, "alg": "ES256"})
    return jwt.decode(token, key, algorithms=["ES256"], audience=AUDIENCE, issuer=ISSUER)


async def test_what_webcrypto_signs_verifies_on_the_twin_and_with_pyjwt(
    pyodide_worker: PyodideWorker,
) -> None:
    key = pyodide_worker.crypto("new_signing_key")
    token = pyodide_worker.crypto("sign", claims=claims(), pkcs8=key["pkcs8"], kid="k1")

    assert jwt.get_unverified_header(token) == {"alg": "ES256", "kid": "k1", "typ": "JWT"}
    assert (await verify_here(token, key["public_jwk"]))["node"] == "n_1"
    assert pyjwt_verifies(token, key["public_jwk"])["node"] == "n_1"
    verified = pyodide_worker.crypto(
        "verify", token=token, public_jwk=key["public_jwk"], **checks()
    )
    assert verified["claims"]["node"] == "n_1"


async def test_what_the_twin_signs_verifies_under_webcrypto(pyodide_worker: PyodideWorker) -> None:
    key = await crypto.new_signing_key()
    signed = claims()
    token = await jws.sign(signed, key.pkcs8, "k2")

    assert pyjwt_verifies(token, key.public_jwk) == signed
    verified = pyodide_worker.crypto("verify", token=token, public_jwk=key.public_jwk, **checks())
    assert verified == {"claims": signed}


def test_webcrypto_refuses_forgeries(pyodide_worker: PyodideWorker) -> None:
    key = pyodide_worker.crypto("new_signing_key")
    stranger = ec.generate_private_key(ec.SECP256R1())
    cases = {
        "did not verify": jwt.encode(claims(), stranger, algorithm="ES256", headers={"kid": "k"}),
        "algorithm must be ES256": jwt.encode(claims(), "s" * 32, algorithm="HS256"),
        "expired": pyodide_worker.crypto(
            "sign", claims=claims(exp=int(time.time()) - 3600), pkcs8=key["pkcs8"], kid="k"
        ),
        "not a sam:agent token": pyodide_worker.crypto(
            "sign", claims=claims(aud="sam:node"), pkcs8=key["pkcs8"], kid="k"
        ),
        "another issuer": pyodide_worker.crypto(
            "sign", claims=claims(iss="https://evil.example"), pkcs8=key["pkcs8"], kid="k"
        ),
        "not a JWT": "a.b.c",
    }
    for reason, token in cases.items():
        answer = pyodide_worker.crypto(
            "verify", token=token, public_jwk=key["public_jwk"], **checks()
        )
        assert reason in answer.get("refused", ""), (reason, answer)


def test_a_signing_key_stored_as_today_signs_under_webcrypto(pyodide_worker: PyodideWorker) -> None:
    # D1 holds signing keys as PKCS #8 DER made by `cryptography` (before the seam existed).
    stored = ec.generate_private_key(ec.SECP256R1())
    der = stored.private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    token = pyodide_worker.crypto("sign", claims=claims(), pkcs8=b64(der), kid="old")

    assert jwt.decode(token, stored.public_key(), algorithms=["ES256"], audience=AUDIENCE)


@pytest.mark.parametrize("owner_kind", [(OWNER, KIND), ("u_bob", KIND), (OWNER, "openai")])
async def test_aes_gcm_sealed_on_one_opens_on_the_other(
    pyodide_worker: PyodideWorker, owner_kind: tuple[str, str]
) -> None:
    key = crypto.parse_key(crypto.generate_key())
    here = crypto.Cipher(key)
    owner, kind = owner_kind
    bound_as_sealed = owner_kind == (OWNER, KIND)

    # Sealed on the twin, opened under WebCrypto.
    sealed = await here.seal(OWNER, KIND, SECRET)
    opened = pyodide_worker.crypto(
        "open",
        key=b64(key),
        owner=owner,
        kind=kind,
        nonce=b64(sealed.nonce),
        ciphertext=b64(sealed.ciphertext),
    )
    if bound_as_sealed:
        assert base64.b64decode(opened["plaintext"]) == SECRET
    else:
        assert "did not authenticate" in opened["refused"]

    # Sealed under WebCrypto, opened on the twin.
    there = pyodide_worker.crypto(
        "seal", key=b64(key), owner=OWNER, kind=KIND, plaintext=b64(SECRET)
    )
    sealed_there = crypto.Sealed(
        base64.b64decode(there["nonce"]), base64.b64decode(there["ciphertext"])
    )
    if bound_as_sealed:
        assert await here.open(owner, kind, sealed_there) == SECRET
    else:
        with pytest.raises(crypto.DecryptionError):
            await here.open(owner, kind, sealed_there)


def test_the_published_key_set_comes_from_webcrypto_and_verifies_with_pyjwt(
    pyodide_worker: PyodideWorker,
) -> None:
    response = pyodide_worker.fetch("https://api.example.com/.well-known/jwks.json")

    assert response.status == 200, response.body
    [published] = response.json()["keys"]
    assert set(published) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
    jwt.PyJWK(published)  # a key PyJWT (the agent's verifier) accepts
    again = pyodide_worker.fetch("https://api.example.com/.well-known/jwks.json").json()
    assert again["keys"] == [published]  # made once, stored sealed in D1, read back


@pytest.mark.parametrize(
    "form", [serialization.PrivateFormat.TraditionalOpenSSL, serialization.PrivateFormat.PKCS8]
)
async def test_a_github_app_jwt_signed_under_webcrypto_matches_the_twin_and_verifies(
    pyodide_worker: PyodideWorker, form: serialization.PrivateFormat
) -> None:
    # GitHub hands out PKCS #1 (TraditionalOpenSSL); an operator may convert it to PKCS #8.
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, form, serialization.NoEncryption()).decode()
    now = int(time.time())
    app_claims = {"iat": now - 60, "exp": now + 540, "iss": "424242"}

    token = pyodide_worker.crypto("sign_rs256", claims=app_claims, pem=pem)

    assert jwt.get_unverified_header(token) == {"alg": "RS256", "typ": "JWT"}
    assert jwt.decode(token, key.public_key(), algorithms=["RS256"]) == app_claims
    # RSASSA-PKCS1-v1_5 is deterministic: the twin must sign byte for byte the same.
    assert await jws.sign_rs256(app_claims, pkcs8_der(pem)) == token
