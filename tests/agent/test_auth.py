"""Token verification against the loopback control plane's real JWKS over HTTP.

The clock is injected so TTL and cooldown are crossed without sleeping; the HTTP surface
of the same rules is tested against the real agent process in test_server.py.
"""

from collections.abc import AsyncIterator

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from agent.auth import (
    AGENT_AUDIENCE,
    JWKS_RETRY_SECONDS,
    JWKS_TTL_SECONDS,
    TERMINAL_AUDIENCE,
    UNKNOWN_KID_COOLDOWN_SECONDS,
    KeySet,
    TokenVerifier,
    bearer_token,
)
from agent.control_plane import new_session
from agent.errors import AuthUnavailable, Forbidden, Unauthorized
from tests.support.control_plane import ControlPlaneDouble

WORKSPACE = "ws-1"
BOTH = (AGENT_AUDIENCE, TERMINAL_AUDIENCE)
STATUS_ERRORS = {401: Unauthorized, 403: Forbidden}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def keys(control_plane: ControlPlaneDouble, clock: FakeClock) -> AsyncIterator[KeySet]:
    async with new_session() as session:
        yield KeySet(control_plane.jwks_url, session, clock=clock)


@pytest.fixture
def verifier(keys: KeySet, control_plane: ControlPlaneDouble) -> TokenVerifier:
    return TokenVerifier(keys, control_plane.issuer, control_plane.node_id)


async def test_agent_token_is_accepted(verifier: TokenVerifier, control_plane) -> None:
    principal = await verifier.verify(control_plane.agent_token(), [AGENT_AUDIENCE])
    assert principal.audience == AGENT_AUDIENCE
    assert principal.node == control_plane.node_id


async def test_terminal_token_opens_its_workspace_only(verifier, control_plane) -> None:
    token = control_plane.terminal_token(WORKSPACE, sub="user-7")
    principal = await verifier.verify(token, BOTH, workspace=WORKSPACE)
    assert (principal.audience, principal.workspace, principal.subject) == (
        TERMINAL_AUDIENCE,
        WORKSPACE,
        "user-7",
    )
    with pytest.raises(Forbidden, match="workspace"):
        await verifier.verify(token, BOTH, workspace="ws-2")


async def test_agent_token_opens_any_workspace_socket(verifier, control_plane) -> None:
    principal = await verifier.verify(control_plane.agent_token(), BOTH, workspace="ws-9")
    assert principal.audience == AGENT_AUDIENCE


@pytest.mark.parametrize("route", ["http", "ws"])
async def test_every_bad_token_is_refused(verifier, control_plane, route: str) -> None:
    audiences = BOTH if route == "ws" else (AGENT_AUDIENCE,)
    cases = control_plane.bad_tokens(WORKSPACE, route)
    assert len(cases) >= 15
    for name, case in cases.items():
        with pytest.raises((Unauthorized, Forbidden)) as refused:
            await verifier.verify(case.token, audiences, workspace=WORKSPACE)
        assert isinstance(refused.value, STATUS_ERRORS[case.status]), (name, refused.value)


async def test_rotated_key_is_accepted_without_restart(verifier, control_plane, keys) -> None:
    await verifier.verify(control_plane.agent_token(), [AGENT_AUDIENCE])
    assert control_plane.jwks_fetches == 1
    new_key = control_plane.rotate()
    await verifier.verify(control_plane.agent_token(), [AGENT_AUDIENCE])
    assert control_plane.jwks_fetches == 2
    assert new_key.kid in keys.kids


async def test_unknown_kid_refetch_respects_the_cooldown(verifier, control_plane, clock) -> None:
    await verifier.verify(control_plane.agent_token(), [AGENT_AUDIENCE])
    bogus = control_plane.bad_tokens(WORKSPACE)["unknown_kid"].token
    for _ in range(50):
        with pytest.raises(Unauthorized, match="unknown"):
            await verifier.verify(bogus, [AGENT_AUDIENCE])
    assert control_plane.jwks_fetches == 2  # the first fetch, then one refetch for the flood

    # A real rotation inside the cooldown waits for it to pass.
    control_plane.rotate()
    with pytest.raises(Unauthorized, match="unknown"):
        await verifier.verify(control_plane.agent_token(), [AGENT_AUDIENCE])
    clock.advance(UNKNOWN_KID_COOLDOWN_SECONDS)
    await verifier.verify(control_plane.agent_token(), [AGENT_AUDIENCE])
    assert control_plane.jwks_fetches == 3


async def test_keys_are_refetched_after_the_ttl(verifier, control_plane, clock) -> None:
    old_token = control_plane.agent_token()
    await verifier.verify(old_token, [AGENT_AUDIENCE])
    control_plane.rotate(retire_old=True)
    clock.advance(JWKS_TTL_SECONDS - 1)
    await verifier.verify(old_token, [AGENT_AUDIENCE])  # still cached
    assert control_plane.jwks_fetches == 1
    clock.advance(1)
    with pytest.raises(Unauthorized, match="unknown"):
        await verifier.verify(old_token, [AGENT_AUDIENCE])
    assert control_plane.jwks_fetches == 2


async def test_cached_keys_survive_a_jwks_outage(verifier, control_plane, clock) -> None:
    token = control_plane.agent_token()
    await verifier.verify(token, [AGENT_AUDIENCE])
    control_plane.jwks_status = 503
    clock.advance(JWKS_TTL_SECONDS)
    await verifier.verify(token, [AGENT_AUDIENCE])
    assert control_plane.jwks_fetches == 2
    await verifier.verify(token, [AGENT_AUDIENCE])
    assert control_plane.jwks_fetches == 2  # retried only after JWKS_RETRY_SECONDS


async def test_no_keys_yet_is_unavailable_then_recovers(verifier, control_plane, clock) -> None:
    control_plane.jwks_status = 500
    with pytest.raises(AuthUnavailable, match="reachable"):
        await verifier.verify(control_plane.agent_token(), [AGENT_AUDIENCE])
    control_plane.jwks_status = 200
    clock.advance(JWKS_RETRY_SECONDS)
    await verifier.verify(control_plane.agent_token(), [AGENT_AUDIENCE])


async def test_keys_of_other_types_are_skipped(verifier, control_plane, keys) -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_jwk = {**RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True), "kid": "rsa-1"}
    control_plane.extra_jwks = [rsa_jwk, {"kty": "EC", "crv": "P-256", "kid": "broken"}]
    await verifier.verify(control_plane.agent_token(), [AGENT_AUDIENCE])
    assert keys.kids == [control_plane.signing_key.kid]
    forged = jwt.encode(
        control_plane.claims(AGENT_AUDIENCE, node=control_plane.node_id),
        rsa_key,
        "RS256",
        headers={"kid": "rsa-1"},
    )
    with pytest.raises(Unauthorized, match="algorithm"):
        await verifier.verify(forged, [AGENT_AUDIENCE])


async def test_token_with_a_list_audience(verifier, control_plane) -> None:
    token = control_plane.mint(["sam:other", AGENT_AUDIENCE], node=control_plane.node_id)
    assert (await verifier.verify(token, [AGENT_AUDIENCE])).audience == AGENT_AUDIENCE


def test_bearer_token_parsing() -> None:
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("bearer  abc ") == "abc"
    assert bearer_token("Basic abc") is None
    assert bearer_token("Bearer ") is None
    assert bearer_token(None) is None
