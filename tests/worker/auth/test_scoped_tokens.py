"""worker/auth/scoped_tokens.py, jws.py and keys.py on the real D1 twin: minting, verifying,
forgeries, rotation and key retention. Forgeries are signed by PyJWT, so the seam also
verifies what an independent implementation signs. (Verification by an independent
verifier over HTTP, through the real edge, is in test_jwks.py.)
"""

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from tests.support.edge_tokens import private_key_of
from twin import env as local_env
from twin.clock import ManualClock
from twin.wrangler import load
from worker.auth import keys, scoped_tokens
from worker.auth.crypto import DecryptionError, generate_key
from worker.auth.scoped_tokens import Audience, InvalidToken, WrongScope
from worker.config import Config
from worker.deployment import Deployment
from worker.http_errors import status_for

ROOT = Path(__file__).resolve().parents[3]
DOMAIN = "localhost:8787"
ISSUER = "http://api.localhost:8787"


def build(data_dir: Path, domain: str = DOMAIN, key: str | None = None) -> local_env.Runtime:
    return local_env.build(
        load(ROOT / "wrangler.toml"),
        data_dir,
        ManualClock(),
        {
            "SAM_DOMAIN": domain,
            "SAM_ENVIRONMENT": "development",
            "SAM_ENCRYPTION_KEY": key or generate_key(),
        },
    )


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[local_env.Runtime]:
    built = build(tmp_path / ".sam")
    yield built
    built.close()


@pytest.fixture
def env(runtime: local_env.Runtime) -> Any:
    return runtime.env


@pytest.fixture
def deployment(env: Any) -> Deployment:
    """On the system clock: the tokens PyJWT signs here are stamped with the wall clock."""
    return Deployment.of(env)


def at(env: Any, moment: float) -> Deployment:
    """`env` on a clock stopped at `moment`."""
    return Deployment.of(env, ManualClock(moment))


def _segment(value: dict[str, Any]) -> str:
    raw = json.dumps(value, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "aud": "sam:agent",
        "node": "n_1",
        "iat": now,
        "exp": now + 60,
        "jti": "j",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


async def _sign(deployment: Deployment, claims: dict[str, Any], **headers: Any) -> str:
    """Signed with the control plane's real active key: only the claims are wrong."""
    key = await keys.active_key(deployment)
    return jwt.encode(
        claims, private_key_of(key), algorithm="ES256", headers={"kid": key.kid, **headers}
    )


async def _rows(env: Any) -> list[Any]:
    result = await env.DATABASE.prepare("SELECT * FROM signing_keys ORDER BY created_at").all()
    return list(result["results"])


# --- minting ---------------------------------------------------------------------------


async def test_no_key_exists_until_the_first_token(deployment: Deployment, env: Any) -> None:
    assert await _rows(env) == []
    minted = await scoped_tokens.mint_agent_token(deployment, "n_1")
    rows = await _rows(env)
    assert len(rows) == 1 and rows[0]["retired_at"] is None
    assert jwt.get_unverified_header(minted.token) == {
        "alg": "ES256",
        "kid": rows[0]["kid"],
        "typ": "JWT",
    }


async def test_each_audience_carries_the_agent_contracts_claims(
    deployment: Deployment, env: Any
) -> None:
    before = int(time.time())
    cases = [
        (
            await scoped_tokens.mint_terminal_token(deployment, "u_1", "n_1", "w_1", "session:x"),
            Audience.TERMINAL,
            {"sub": "u_1", "node": "n_1", "workspace": "w_1", "grant": "session:x"},
        ),
        (await scoped_tokens.mint_agent_token(deployment, "n_1"), Audience.AGENT, {"node": "n_1"}),
        (await scoped_tokens.mint_node_token(deployment, "n_1"), Audience.NODE, {"node": "n_1"}),
        (
            await scoped_tokens.mint_workspace_token(deployment, "n_1", "w_1"),
            Audience.WORKSPACE,
            {"node": "n_1", "workspace": "w_1"},
        ),
    ]
    assert {case[1].value for case in cases} == {
        "sam:terminal",
        "sam:agent",
        "sam:node",
        "sam:workspace",
    }
    jtis = set()
    for minted, audience, scope in cases:
        claims = await scoped_tokens.verify(deployment, minted.token, audience)
        assert {name: claims[name] for name in scope} == scope
        assert claims["iss"] == ISSUER and claims["aud"] == audience
        assert set(claims) == {*scope, "iss", "aud", "iat", "exp", "jti"}
        assert claims["exp"] == minted.expires_at
        assert (
            before <= claims["iat"]
            and claims["exp"] - claims["iat"] == (scoped_tokens.LIFETIME_SECONDS[audience])
        )
        jtis.add(claims["jti"])
    assert len(jtis) == len(cases)


def test_lifetimes_are_short_for_browser_and_agent_calls() -> None:
    assert scoped_tokens.TERMINAL_TOKEN_SECONDS <= 5 * 60
    assert scoped_tokens.AGENT_TOKEN_SECONDS <= 5 * 60
    assert (
        scoped_tokens.NODE_TOKEN_SECONDS
        > scoped_tokens.WORKSPACE_TOKEN_SECONDS
        > scoped_tokens.AGENT_TOKEN_SECONDS
    )
    assert scoped_tokens.KEY_RETENTION_SECONDS > scoped_tokens.NODE_TOKEN_SECONDS


def test_the_issuer_is_the_api_host(tmp_path: Path) -> None:
    for domain, url in [
        ("localhost:8787", "http://api.localhost:8787"),
        ("sam.example.com", "https://api.sam.example.com"),
    ]:
        runtime = build(tmp_path / domain, domain)
        try:
            assert scoped_tokens.control_plane_url(Config.from_env(runtime.env)) == url
        finally:
            runtime.close()


async def test_concurrent_first_uses_make_one_key(deployment: Deployment, env: Any) -> None:
    minted = await asyncio.gather(
        *(scoped_tokens.mint_agent_token(deployment, "n_1") for _ in range(8))
    )
    assert len({jwt.get_unverified_header(m.token)["kid"] for m in minted}) == 1
    assert len(await _rows(env)) == 1


async def test_the_private_key_is_sealed_and_bound_to_its_kid(
    deployment: Deployment, env: Any
) -> None:
    first = await keys.active_key(deployment)
    await scoped_tokens.rotate_signing_key(deployment)
    second = await keys.active_key(deployment)
    der = first.pkcs8
    rows = await _rows(env)
    assert all(der not in bytes(row["private_key_ciphertext"]) for row in rows)
    for row in rows:
        assert "d" not in json.loads(row["public_jwk"])
    # Swap the sealed private keys: neither opens under the other's kid.
    await (
        env.DATABASE.prepare(
            "UPDATE signing_keys SET private_key_nonce = (SELECT private_key_nonce FROM "
            "signing_keys WHERE kid = ?1), private_key_ciphertext = (SELECT "
            "private_key_ciphertext FROM signing_keys WHERE kid = ?1) WHERE kid = ?2"
        )
        .bind(first.kid, second.kid)
        .run()
    )
    with pytest.raises(DecryptionError):
        await keys.active_key(deployment)


# --- forgeries -------------------------------------------------------------------------


async def _assert_refused(
    deployment: Deployment, token: str, reason: str, audience=Audience.AGENT
) -> None:
    with pytest.raises(InvalidToken) as refused:
        await scoped_tokens.verify(deployment, token, audience)
    assert status_for(refused.value) == 401 and refused.value.code == "invalid_token"
    assert reason in refused.value.message


async def test_alg_none_is_refused(deployment: Deployment, env: Any) -> None:
    kid = (await keys.active_key(deployment)).kid
    token = f"{_segment({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_segment(_claims())}."
    await _assert_refused(deployment, token, "algorithm must be ES256")
    unsigned = jwt.encode(_claims(), None, algorithm="none", headers={"kid": kid})
    await _assert_refused(deployment, unsigned, "algorithm must be ES256")


async def test_hmac_signed_with_the_public_key_is_refused(deployment: Deployment, env: Any) -> None:
    key = await keys.active_key(deployment)
    public_pem = (
        private_key_of(key)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    public_jwk = json.dumps((await scoped_tokens.jwks(deployment))["keys"][0]).encode()
    for secret in (public_pem, public_jwk):
        header = {"alg": "HS256", "typ": "JWT", "kid": key.kid}
        signing_input = f"{_segment(header)}.{_segment(_claims())}".encode()
        mac = hmac.new(secret, signing_input, hashlib.sha256).digest()
        token = signing_input.decode() + "." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
        await _assert_refused(deployment, token, "algorithm must be ES256")


async def test_an_unknown_kid_is_refused(deployment: Deployment, env: Any) -> None:
    await keys.active_key(deployment)
    stranger = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(_claims(), stranger, algorithm="ES256", headers={"kid": "not-ours"})
    await _assert_refused(deployment, token, "signing key 'not-ours' is unknown")
    no_kid = jwt.encode(_claims(), stranger, algorithm="ES256")
    await _assert_refused(deployment, no_kid, "no kid")


async def test_our_kid_with_someone_elses_signature_is_refused(
    deployment: Deployment, env: Any
) -> None:
    kid = (await keys.active_key(deployment)).kid
    stranger = ec.generate_private_key(ec.SECP256R1())
    token = jwt.encode(_claims(), stranger, algorithm="ES256", headers={"kid": kid})
    await _assert_refused(deployment, token, "did not verify")
    # And a genuine token with its claims edited after signing.
    genuine = (await scoped_tokens.mint_agent_token(deployment, "n_1")).token
    head, _, signature = genuine.split(".")
    edited = f"{head}.{_segment({**_claims(), 'node': 'n_other'})}.{signature}"
    await _assert_refused(deployment, edited, "did not verify")


async def test_an_expired_token_is_refused(deployment: Deployment, env: Any) -> None:
    an_hour_ago = time.time() - 3600
    old = await scoped_tokens.mint_agent_token(at(env, an_hour_ago), "n_1")
    await _assert_refused(deployment, old.token, "expired")
    # Within the leeway a just-expired token still passes (clock skew between machines).
    just_expired = (
        time.time() - scoped_tokens.AGENT_TOKEN_SECONDS - scoped_tokens.LEEWAY_SECONDS / 2
    )
    just = await scoped_tokens.mint_agent_token(at(env, just_expired), "n_1")
    assert (await scoped_tokens.verify(deployment, just.token, Audience.AGENT))["node"] == "n_1"


async def test_the_wrong_audience_is_refused(deployment: Deployment, env: Any) -> None:
    agent = (await scoped_tokens.mint_agent_token(deployment, "n_1")).token
    node = (await scoped_tokens.mint_node_token(deployment, "n_1")).token
    await _assert_refused(deployment, agent, "not a sam:node token", Audience.NODE)
    await _assert_refused(deployment, node, "not a sam:agent token", Audience.AGENT)
    await _assert_refused(deployment, agent, "not a sam:terminal token", Audience.TERMINAL)
    listed = await _sign(deployment, _claims(aud=["sam:agent", "sam:node"]))
    await _assert_refused(deployment, listed, "not a sam:agent token")


async def test_the_wrong_issuer_is_refused(
    deployment: Deployment, env: Any, tmp_path: Path
) -> None:
    await _assert_refused(
        deployment, await _sign(deployment, _claims(iss="https://evil.example")), "issuer"
    )
    await _assert_refused(deployment, await _sign(deployment, _claims(iss=None)), "did not verify")
    # Another deployment's token: its keys are not ours (and it names another issuer).
    other = build(tmp_path / "other", "sam.example.com", key=env.SAM_ENCRYPTION_KEY)
    try:
        foreign = (await scoped_tokens.mint_agent_token(Deployment.of(other.env), "n_1")).token
        await _assert_refused(deployment, foreign, "unknown")
    finally:
        other.close()


@pytest.mark.parametrize("missing", ["exp", "iat", "jti", "aud"])
async def test_a_token_without_a_registered_claim_is_refused(
    deployment: Deployment, env: Any, missing: str
) -> None:
    token = await _sign(deployment, _claims(**{missing: None}))
    await _assert_refused(deployment, token, f"it has no {missing!r} claim")


async def test_a_token_without_its_scope_claims_is_refused(
    deployment: Deployment, env: Any
) -> None:
    await _assert_refused(
        deployment, await _sign(deployment, _claims(node=None)), "'node' claim is missing"
    )
    await _assert_refused(
        deployment, await _sign(deployment, _claims(node=7)), "'node' claim is missing"
    )
    terminal = _claims(aud="sam:terminal", workspace="w_1")  # no sub
    await _assert_refused(deployment, await _sign(deployment, terminal), "'sub'", Audience.TERMINAL)


async def test_garbage_is_refused(deployment: Deployment, env: Any) -> None:
    await keys.active_key(deployment)
    for token in ("", "not-a-jwt", "a.b.c", "x" * (scoped_tokens.MAX_TOKEN_BYTES + 1)):
        with pytest.raises(InvalidToken):
            await scoped_tokens.verify(deployment, token, Audience.AGENT)


async def test_another_node_or_workspace_is_a_403(deployment: Deployment, env: Any) -> None:
    terminal = (
        await scoped_tokens.mint_terminal_token(deployment, "u_1", "n_1", "w_1", "session:x")
    ).token
    claims = await scoped_tokens.verify(
        deployment, terminal, Audience.TERMINAL, node="n_1", workspace="w_1"
    )
    assert claims["workspace"] == "w_1"
    with pytest.raises(WrongScope) as other_workspace:
        await scoped_tokens.verify(deployment, terminal, Audience.TERMINAL, workspace="w_2")
    assert status_for(other_workspace.value) == 403
    with pytest.raises(WrongScope):
        await scoped_tokens.verify(deployment, terminal, Audience.TERMINAL, node="n_2")
    node = (await scoped_tokens.mint_node_token(deployment, "n_1")).token
    with pytest.raises(WrongScope):
        await scoped_tokens.verify(deployment, node, Audience.NODE, node="n_2")


# --- rotation ----------------------------------------------------------------------------


async def test_rotation_keeps_old_tokens_valid_and_signs_new_ones_with_the_new_key(
    deployment: Deployment,
    env: Any,
) -> None:
    old = await scoped_tokens.mint_node_token(deployment, "n_1")
    old_kid = jwt.get_unverified_header(old.token)["kid"]
    rotation = await scoped_tokens.rotate_signing_key(deployment)
    assert rotation.retired == [old_kid] and rotation.kid != old_kid
    new = await scoped_tokens.mint_node_token(deployment, "n_1")
    assert jwt.get_unverified_header(new.token)["kid"] == rotation.kid
    assert (await scoped_tokens.verify(deployment, old.token, Audience.NODE))["node"] == "n_1"
    assert (await scoped_tokens.verify(deployment, new.token, Audience.NODE))["node"] == "n_1"
    published = [key["kid"] for key in (await scoped_tokens.jwks(deployment))["keys"]]
    assert published == [rotation.kid, old_kid]
    rows = await _rows(env)
    assert [row["kid"] for row in rows if row["retired_at"] is None] == [rotation.kid]


async def test_a_retired_key_is_dropped_once_its_tokens_have_expired(
    deployment: Deployment, env: Any
) -> None:
    retention = scoped_tokens.KEY_RETENTION_SECONDS
    long_ago = time.time() - retention - 60
    first = await keys.active_key(at(env, long_ago - 10))
    # Retired just over the retention window ago: every token it signed has expired.
    await keys.rotate(at(env, long_ago), retention)
    recent = await keys.active_key(deployment)
    published = [key.kid for key in await keys.published_keys(deployment, retention)]
    assert published == [recent.kid]
    stale = await _sign_with(first, _claims(exp=int(time.time()) + 60))
    await _assert_refused(deployment, stale, "unknown")
    # Retired just inside the window: still published.
    await scoped_tokens.rotate_signing_key(at(env, time.time() - retention + 60))
    assert recent.kid in [key["kid"] for key in (await scoped_tokens.jwks(deployment))["keys"]]
    # The next rotation deletes rows past their window (and only those).
    await scoped_tokens.rotate_signing_key(deployment)
    kids = [row["kid"] for row in await _rows(env)]
    assert first.kid not in kids and recent.kid in kids and len(kids) == 3


async def _sign_with(key: keys.ActiveKey, claims: dict[str, Any]) -> str:
    return jwt.encode(claims, private_key_of(key), algorithm="ES256", headers={"kid": key.kid})


async def test_keys_survive_a_restart_with_the_same_encryption_key(tmp_path: Path) -> None:
    key = generate_key()
    first = build(tmp_path / ".sam", key=key)
    try:
        token = (await scoped_tokens.mint_agent_token(Deployment.of(first.env), "n_1")).token
    finally:
        first.close()
    second = build(tmp_path / ".sam", key=key)
    try:
        assert (await scoped_tokens.verify(Deployment.of(second.env), token, Audience.AGENT))[
            "node"
        ] == "n_1"
        again = (await scoped_tokens.mint_agent_token(Deployment.of(second.env), "n_1")).token
        assert jwt.get_unverified_header(again)["kid"] == jwt.get_unverified_header(token)["kid"]
    finally:
        second.close()
    wrong = build(tmp_path / ".sam", key=generate_key())
    try:
        with pytest.raises(DecryptionError):
            await scoped_tokens.mint_agent_token(Deployment.of(wrong.env), "n_1")
    finally:
        wrong.close()
