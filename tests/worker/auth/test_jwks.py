"""`/.well-known/jwks.json` and key rotation, through the real edge over real HTTP.

Tokens are checked by verifiers that know nothing of worker/: pyjwt's PyJWKClient and the
node agent's own KeySet + TokenVerifier, both fetching the JWKS from the edge. The tokens
are minted by worker/auth/scoped_tokens.py in this process, on the edge's own D1 file and with the
encryption key `sam dev` generated, i.e. with the signing keys the edge stores.
"""

import json
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import jwt
import pytest

from agent.auth import KeySet, TokenVerifier
from agent.errors import Forbidden
from tests.support.edge import Edge, running_edge
from twin.d1 import D1Database
from twin.env import Env
from worker.auth import scoped_tokens
from worker.deployment import Deployment

JWKS_PATH = "/.well-known/jwks.json"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    data_dir: Path = tmp_path_factory.mktemp("jwks") / ".sam"
    with running_edge(data_dir) as running:
        yield running


@pytest.fixture(scope="module")
def admin(edge: Edge) -> Iterator[httpx.Client]:
    # The first user of a deployment is its admin.
    client = sign_in(edge, "root")
    yield client
    client.close()


@pytest.fixture(scope="module")
def minter(edge: Edge, admin: httpx.Client) -> Iterator[Deployment]:
    """A deployment on the edge's own D1 database and encryption key, for scoped_tokens.mint_*."""
    secrets = json.loads((edge.data_dir / "dev-secrets.json").read_text())
    database = D1Database(edge.data_dir / "d1" / "sam.sqlite")
    env = Env(
        {
            "DATABASE": database,
            "SAM_DOMAIN": edge.domain,
            "SAM_ENCRYPTION_KEY": secrets["SAM_ENCRYPTION_KEY"],
        }
    )
    yield Deployment.of(env)
    database.close()


def sign_in(edge: Edge, login: str) -> httpx.Client:
    """A browser-like client on the app host with a dev sign-in session cookie."""
    client = edge.client("app")
    client.headers["origin"] = f"http://{edge.host('app')}"
    reply = client.post("/api/auth/dev-login", json={"login": login})
    assert reply.status_code == 200, reply.text
    return client


def jwks_client(edge: Edge) -> jwt.PyJWKClient:
    # No cooldown between unknown-kid refetches, so a rotation shows at once in a test.
    return jwt.PyJWKClient(
        f"http://127.0.0.1:{edge.port}{JWKS_PATH}",
        headers={"Host": edge.host("api")},
        cooldown_duration=0,
    )


def independent_verify(edge: Edge, client: jwt.PyJWKClient, token: str, audience: str) -> dict:
    key = client.get_signing_key_from_jwt(token)
    return jwt.decode(
        token,
        key,
        algorithms=["ES256"],
        audience=audience,
        issuer=f"http://api.{edge.domain}",
        options={"require": ["exp", "iss", "aud"]},
    )


def published(edge: Edge) -> list[dict[str, Any]]:
    with edge.client("api") as api:
        reply = api.get(JWKS_PATH)
    assert reply.status_code == 200, reply.text
    return reply.json()["keys"]


def test_the_jwks_publishes_public_keys_only(edge: Edge) -> None:
    with edge.client("api") as api:
        reply = api.get(JWKS_PATH)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("application/jwk-set+json")
    assert reply.headers["cache-control"] == "public, max-age=300"
    keys = reply.json()["keys"]
    assert keys, "a key is made on first use, and a JWKS fetch is a use"
    for key in keys:
        assert {"kid", "kty", "crv", "x", "y"} <= set(key)
        assert key["kty"] == "EC" and key["crv"] == "P-256"
        assert key["alg"] == "ES256" and key["use"] == "sig"
        assert not {"d", "p", "q", "dp", "dq", "qi", "k"} & set(key)
    # The same set on every fetch (nothing made per request).
    assert published(edge) == keys


def test_the_jwks_is_on_the_api_host_only(edge: Edge) -> None:
    with edge.client("app") as app:
        reply = app.get(JWKS_PATH)
    assert "keys" not in reply.text


async def test_tokens_verify_with_the_published_jwks(edge: Edge, minter: Deployment) -> None:
    terminal = await scoped_tokens.mint_terminal_token(minter, "u_1", "n_1", "w_1", "session:x")
    agent = await scoped_tokens.mint_agent_token(minter, "n_1")
    client = jwks_client(edge)
    claims = independent_verify(edge, client, terminal.token, "sam:terminal")
    assert (claims["sub"], claims["node"], claims["workspace"]) == ("u_1", "n_1", "w_1")
    assert independent_verify(edge, client, agent.token, "sam:agent")["node"] == "n_1"
    with pytest.raises(jwt.InvalidAudienceError):
        independent_verify(edge, client, agent.token, "sam:terminal")


async def test_the_node_agents_own_verifier_accepts_them(edge: Edge, minter: Deployment) -> None:
    terminal = (
        await scoped_tokens.mint_terminal_token(minter, "u_1", "n_1", "w_1", "session:x")
    ).token
    agent = (await scoped_tokens.mint_agent_token(minter, "n_1")).token
    other_node = (await scoped_tokens.mint_agent_token(minter, "n_2")).token
    async with aiohttp.ClientSession(headers={"Host": edge.host("api")}) as session:
        keyset = KeySet(f"http://127.0.0.1:{edge.port}{JWKS_PATH}", session)
        verifier = TokenVerifier(keyset, f"http://api.{edge.domain}", "n_1")
        principal = await verifier.verify(terminal, ["sam:terminal"], workspace="w_1")
        assert (principal.subject, principal.workspace) == ("u_1", "w_1")
        assert (await verifier.verify(agent, ["sam:agent"])).node == "n_1"
        with pytest.raises(Forbidden, match="the token is for node 'n_2', this is 'n_1'"):
            await verifier.verify(other_node, ["sam:agent"])


async def test_rotation_publishes_the_new_key_and_keeps_the_old(
    edge: Edge, admin: httpx.Client, minter: Deployment
) -> None:
    before = await scoped_tokens.mint_node_token(minter, "n_1")
    old_kid = jwt.get_unverified_header(before.token)["kid"]
    client = jwks_client(edge)
    independent_verify(edge, client, before.token, "sam:node")  # caches the old set

    reply = admin.post("/api/admin/signing-keys/rotate")
    assert reply.status_code == 200, reply.text
    rotated = reply.json()
    assert rotated["kid"] != old_kid and rotated["retired"] == [old_kid]
    assert rotated["retired_published_seconds"] >= scoped_tokens.NODE_TOKEN_SECONDS

    after = await scoped_tokens.mint_node_token(minter, "n_1")
    assert jwt.get_unverified_header(after.token)["kid"] == rotated["kid"]
    assert [key["kid"] for key in published(edge)] == [rotated["kid"], old_kid]
    # The cached client meets an unknown kid, refetches, and both tokens verify.
    assert independent_verify(edge, client, after.token, "sam:node")["node"] == "n_1"
    assert independent_verify(edge, client, before.token, "sam:node")["node"] == "n_1"
    assert independent_verify(edge, jwks_client(edge), before.token, "sam:node")


def test_only_an_admin_may_rotate(edge: Edge, admin: httpx.Client) -> None:
    kids = [key["kid"] for key in published(edge)]
    with closing(sign_in(edge, "mallory")) as mallory:
        refused = mallory.post("/api/admin/signing-keys/rotate")
        assert refused.status_code == 403
        assert refused.json()["error"] == "forbidden"
    with edge.client("api") as anonymous:
        assert anonymous.post("/api/admin/signing-keys/rotate").status_code == 401
    with edge.client("app") as forged:
        forged.headers["origin"] = "http://evil.example"
        forged.cookies.update(admin.cookies)
        assert forged.post("/api/admin/signing-keys/rotate").status_code == 403
    assert admin.get("/api/admin/signing-keys/rotate").status_code == 405
    assert [key["kid"] for key in published(edge)] == kids
