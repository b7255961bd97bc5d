"""Personal API tokens as each isolate remembers them: a revoked token stops working at
once where it was revoked, and everywhere else within LIVE_TOKEN_CACHE_SECONDS."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from twin import env as local_env
from twin.clock import ManualClock
from twin.wrangler import load
from worker.auth import api_tokens
from worker.auth.api_tokens import LIVE_TOKEN_CACHE_SECONDS, create_token, user_for_token
from worker.auth.users import upsert_local_user

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Any]:
    runtime = local_env.build(
        load(ROOT / "wrangler.toml"), tmp_path / ".sam", ManualClock(), {"SAM_DOMAIN": "x.test"}
    )
    yield runtime.env.DATABASE
    runtime.close()


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
