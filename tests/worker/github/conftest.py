"""A loopback GitHub with the App installed, and in-process deployments that use it.

Accounts: alice (the App on her account: api, web), bob (on his: tools), and the ACME
organisation's installation, which GitHub lists for carol only.
"""

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.fakes.github import FakeGitHub
from twin import upstream
from twin.clock import ManualClock
from twin.d1 import D1Database
from twin.env import Env
from twin.kv import KVNamespace
from twin.migrations import apply_migrations
from worker.auth.crypto import generate_key
from worker.deployment import Deployment

ROOT = Path(__file__).resolve().parents[3]
DOMAIN = "sam.test"


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        for login in ("alice", "bob", "carol"):
            fake.add_account(login, name=login.title(), email=f"{login}@example.com")
        for owner, name in (("alice", "api"), ("alice", "web"), ("bob", "tools"), ("acme", "ops")):
            fake.add_repository(owner, name, branches={"main": "a" * 40, "dev": "b" * 40})
        fake.install("alice", ["api", "web"], users={"alice"})
        fake.install("bob", ["tools"], users={"bob"})
        fake.install("acme", ["ops"], users={"carol"}, account_type="Organization")
        yield fake


@pytest.fixture
def clock(github: FakeGitHub) -> Iterator[ManualClock]:
    """One clock for the deployment and the loopback GitHub, starting now."""
    manual = ManualClock(time.time())
    github.clock = manual.now
    yield manual
    github.clock = time.time


def make_deployment(
    github: FakeGitHub, clock: ManualClock, data: Path, **overrides: str
) -> Deployment:
    data.mkdir(parents=True, exist_ok=True)
    database_path = data / "sam.sqlite"
    apply_migrations(database_path, ROOT / "migrations")
    env = Env(
        {
            "SAM_DOMAIN": DOMAIN,
            "SAM_ENCRYPTION_KEY": generate_key(),
            "DATABASE": D1Database(database_path),
            "KV": KVNamespace(data / "kv.sqlite", clock),
            **github.app_vars(),
            **overrides,
        }
    )
    return Deployment.of(env, clock)


@pytest.fixture
async def deployment(
    github: FakeGitHub, clock: ManualClock, tmp_path: Path
) -> AsyncIterator[Deployment]:
    made = make_deployment(github, clock, tmp_path / "deployment")
    yield made
    made.env.DATABASE.close()
    made.env.KV.close()


@pytest.fixture(autouse=True)
async def close_upstream_sessions() -> AsyncIterator[None]:
    """The twin's outbound fetch keeps a session per event loop; each test's loop ends here."""
    yield
    await upstream.close()
