"""Credentials as each isolate remembers them: a revoked API token or a signed-out session
stops working at once in the isolate that revoked it, and everywhere else within the
cache's bound (LIVE_TOKEN_CACHE_SECONDS, SIGNED_IN_CACHE_SECONDS)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from twin import env as local_env
from twin.clock import ManualClock
from twin.wrangler import load
from worker.auth import api_tokens, sessions
from worker.auth.api_tokens import LIVE_TOKEN_CACHE_SECONDS, create_token, user_for_token
from worker.auth.sessions import SIGNED_IN_CACHE_SECONDS, user_for_session
from worker.auth.users import upsert_local_user

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Any]:
    runtime = local_env.build(
        load(ROOT / "wrangler.toml"), tmp_path / ".sam", ManualClock(), {"SAM_DOMAIN": "x.test"}
    )
    yield runtime.env
    runtime.close()


@pytest.fixture
def db(env: Any) -> Any:
    return env.DATABASE


async def new_token(db: Any, login: str) -> tuple[str, str, str]:
    """(owner id, token id, token) of a fresh token of a fresh user."""
    user = await upsert_local_user(db, login)
    made = await create_token(db, user.id, "cli")
    assert made is not None
    listing, token = made
    return user.id, listing["id"], token


async def revoke_elsewhere(db: Any, token_id: str) -> None:
    """What another isolate's revoke leaves behind: the row changed, this cache untold."""
    revoked = await (
        db.prepare("UPDATE api_tokens SET revoked_at = '2026-01-01T00:00:00.000Z' WHERE id = ?")
        .bind(token_id)
        .run()
    )
    assert revoked["meta"]["changes"] == 1


async def test_revoking_here_takes_effect_at_once(db: Any) -> None:
    clock = ManualClock()
    owner, token_id, token = await new_token(db, "alice")
    assert (await user_for_token(db, token, clock)).id == owner
    assert await api_tokens.revoke_token(db, owner, token_id, clock)
    assert await user_for_token(db, token, clock) is None


async def test_revoking_elsewhere_takes_effect_within_the_bound(db: Any) -> None:
    clock = ManualClock()
    owner, token_id, token = await new_token(db, "bob")
    assert (await user_for_token(db, token, clock)).id == owner
    await revoke_elsewhere(db, token_id)
    clock.advance(LIVE_TOKEN_CACHE_SECONDS - 1)
    # Still remembered here: the documented bound, not a lapse.
    assert (await user_for_token(db, token, clock)).id == owner
    clock.advance(1)
    assert await user_for_token(db, token, clock) is None


async def test_each_token_is_remembered_as_its_own_owner(db: Any) -> None:
    clock = ManualClock()
    made = [await new_token(db, f"user{n}") for n in range(5)]
    for _ in range(2):  # the second round is answered from the cache
        for owner, _, token in made:
            assert (await user_for_token(db, token, clock)).id == owner
    # One revoked elsewhere stops at the bound; the others go on.
    await revoke_elsewhere(db, made[0][1])
    clock.advance(LIVE_TOKEN_CACHE_SECONDS)
    assert await user_for_token(db, made[0][2], clock) is None
    for owner, _, token in made[1:]:
        assert (await user_for_token(db, token, clock)).id == owner


async def test_unknown_and_malformed_tokens_are_refused_every_time(db: Any) -> None:
    clock = ManualClock()
    for token in ("sam_pat_" + "A" * 43, "sam_pat_", "sam_pat_' OR 1=1 --"):
        for _ in range(2):
            assert await user_for_token(db, token, clock) is None


# --- browser sessions ---------------------------------------------------------------------


async def test_signing_out_here_takes_effect_at_once(env: Any) -> None:
    clock = ManualClock()
    user = await upsert_local_user(env.DATABASE, "erin")
    session_id = await sessions.create_session(env.KV, user.id, clock)
    assert (await user_for_session(env.KV, env.DATABASE, session_id, clock)).id == user.id
    await sessions.revoke_session(env.KV, session_id)
    assert await user_for_session(env.KV, env.DATABASE, session_id, clock) is None


async def test_signing_out_elsewhere_takes_effect_within_the_bound(env: Any) -> None:
    clock = ManualClock()
    user = await upsert_local_user(env.DATABASE, "frank")
    session_id = await sessions.create_session(env.KV, user.id, clock)
    assert (await user_for_session(env.KV, env.DATABASE, session_id, clock)).id == user.id
    # Another isolate's sign-out: the KV record is gone, this cache untold.
    await env.KV.delete(sessions.SESSION_KEY_PREFIX + sessions.sha256_hex(session_id))
    clock.advance(SIGNED_IN_CACHE_SECONDS - 1)
    assert (await user_for_session(env.KV, env.DATABASE, session_id, clock)).id == user.id
    clock.advance(1)
    assert await user_for_session(env.KV, env.DATABASE, session_id, clock) is None


async def test_unknown_and_expired_sessions_are_refused(env: Any) -> None:
    clock = ManualClock()
    assert await user_for_session(env.KV, env.DATABASE, "no-such-session", clock) is None
    user = await upsert_local_user(env.DATABASE, "grace")
    session_id = await sessions.create_session(env.KV, user.id, clock)
    clock.advance(sessions.SESSION_TTL_SECONDS)
    assert await user_for_session(env.KV, env.DATABASE, session_id, clock) is None
