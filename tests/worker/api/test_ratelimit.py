"""Rate limits (worker/api/ratelimit.py): fixed windows counted in KV.

Through the real edge: limits hit → 429 JSON with Retry-After, counted per client address
(each test talks from its own loopback address, 127.0.0.N, which is what the edge's
CF-Connecting-IP carries), a client-sent CF-Connecting-IP changes nothing, and a small
window configured with `SAM_RATE_LIMITS` opens again. On the KV twin with a ManualClock:
the window arithmetic, the key layout and TTL, per-subject counting, and the per-user
dependency (runs after sign-in, keyed by the user).
"""

import sqlite3
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI

from tests.support.edge import Edge, running_edge, signed_in
from twin import env as local_env
from twin.clock import ManualClock
from twin.kv import KVNamespace
from twin.wrangler import load
from worker.api import ratelimit
from worker.api.app import domain_error
from worker.api.ratelimit import API_TOKEN, SIGN_IN, TERMINAL_TOKEN, Limit, Per, Window
from worker.auth import api_tokens
from worker.auth.users import upsert_local_user
from worker.config import ConfigError
from worker.deployment import Deployment
from worker.errors import SamError
from worker.http_errors import error_reply, status_for

ROOT = Path(__file__).resolve().parents[3]
KV_NAMESPACE_ID = "00000000000000000000000000000000"  # wrangler.toml
SIGN_IN_LIMIT = 3
API_TOKEN_LIMIT = 2
CREATE_LIMIT = 2
# Small enough that a test can wait for the next window.
SIGN_IN_WINDOW_SECONDS = 2
API_TOKEN_WINDOW_SECONDS = 600


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    data_dir: Path = tmp_path_factory.mktemp("ratelimit") / ".sam"
    limits = (
        f"sign_in={SIGN_IN_LIMIT}/{SIGN_IN_WINDOW_SECONDS},"
        f"api_token={API_TOKEN_LIMIT}/{API_TOKEN_WINDOW_SECONDS},"
        f"workspace_create={CREATE_LIMIT}/600"
    )
    with running_edge(data_dir, vars={"SAM_RATE_LIMITS": limits}) as running:
        yield running


def client_from(edge: Edge, address: str, host: str = "api") -> httpx.Client:
    """A client whose connections come from `address` (any of 127.0.0.0/8 on Linux)."""
    return edge.client(host, transport=httpx.HTTPTransport(local_address=address))


def dev_login(client: httpx.Client, login: str = "limited", **headers: str) -> httpx.Response:
    return client.post("/api/auth/dev-login", json={"login": login}, headers=headers)


def start_of_a_fresh_window(window_seconds: int, needed_seconds: float = 1.0) -> None:
    """Wait, if need be, so that the next `needed_seconds` fall in one window."""
    left = window_seconds - time.time() % window_seconds
    if left < needed_seconds:
        time.sleep(left + 0.05)


def assert_rate_limited(response: httpx.Response, window_seconds: int) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == "rate_limited"
    retry_after = int(response.headers["retry-after"])
    assert 1 <= retry_after <= window_seconds
    assert body["message"].endswith(f"try again in {ratelimit.in_words(retry_after)}.")
    return retry_after


# --- through the edge ----------------------------------------------------------------------


def test_sign_in_limit_is_per_address_and_resets(edge: Edge) -> None:
    with client_from(edge, "127.0.0.2") as first, client_from(edge, "127.0.0.3") as second:
        start_of_a_fresh_window(SIGN_IN_WINDOW_SECONDS)
        for _ in range(SIGN_IN_LIMIT):
            assert dev_login(first).status_code == 200
        assert_rate_limited(dev_login(first), SIGN_IN_WINDOW_SECONDS)
        # The login start (GitHub) shares the sign-in limit with dev sign-in.
        refused = first.get("/api/auth/github/login")
        assert_rate_limited(refused, SIGN_IN_WINDOW_SECONDS)
        # Another address has its own count.
        assert dev_login(second).status_code == 200
        # The next window starts from zero.
        time.sleep(int(refused.headers["retry-after"]) + 0.1)
        assert dev_login(first).status_code == 200


def test_a_client_sent_connecting_ip_is_ignored(edge: Edge) -> None:
    with client_from(edge, "127.0.0.4") as client:
        start_of_a_fresh_window(SIGN_IN_WINDOW_SECONDS)
        for n in range(SIGN_IN_LIMIT):
            assert dev_login(client, **{"cf-connecting-ip": f"203.0.113.{n}"}).status_code == 200
        # Neither a new spoofed address nor the header of another client helps.
        spoofed = dev_login(client, **{"cf-connecting-ip": "198.51.100.7"})
        assert_rate_limited(spoofed, SIGN_IN_WINDOW_SECONDS)
        forwarded = dev_login(client, **{"x-forwarded-for": "198.51.100.8"})
        assert_rate_limited(forwarded, SIGN_IN_WINDOW_SECONDS)
    assert "subject=127.0.0.4" in edge.log()
    assert "subject=198.51.100" not in edge.log()


def test_api_token_attempts_count_anonymous_and_signed_in_callers(edge: Edge) -> None:
    start_of_a_fresh_window(API_TOKEN_WINDOW_SECONDS, needed_seconds=5)
    with client_from(edge, "127.0.0.5") as client:
        # Signed in from another address, so the sign-in itself does not count here.
        with client_from(edge, "127.0.0.6") as other:
            session = dev_login(other, "tokenmaker").cookies["sam_session"]
        anonymous = client.post("/api/tokens", json={"name": "guess"})
        assert anonymous.status_code == 401
        created = client.post(
            "/api/tokens",
            json={"name": "ci"},
            headers={"cookie": f"sam_session={session}", "origin": f"http://{edge.host('app')}"},
        )
        assert created.status_code == 201, created.text
        token = created.json()["token"]
        # Over the limit: refused before authentication and before validation.
        for attempt in (
            {"json": {"name": "again"}, "headers": {"authorization": f"Bearer {token}"}},
            {"json": {"kind": "anthropic", "secret": "sk-x"}},
            {"content": b"{not json", "headers": {"authorization": f"Bearer {token}"}},
        ):
            path = "/api/credentials" if "kind" in attempt.get("json", {}) else "/api/tokens"
            assert_rate_limited(client.post(path, **attempt), API_TOKEN_WINDOW_SECONDS)
        # Routes without a limit are unaffected.
        listed = client.get("/api/tokens", headers={"authorization": f"Bearer {token}"})
        assert listed.status_code == 200
        assert [t["name"] for t in listed.json()["tokens"]] == ["ci"]


def test_a_refused_request_is_not_counted_and_does_nothing(edge: Edge) -> None:
    with client_from(edge, "127.0.0.7") as client:
        start_of_a_fresh_window(SIGN_IN_WINDOW_SECONDS)
        for _ in range(SIGN_IN_LIMIT):
            assert dev_login(client, "counted").status_code == 200
        for _ in range(5):
            assert dev_login(client, "refused").status_code == 429
    with closing(sqlite3.connect(edge.data_dir / "kv" / f"{KV_NAMESPACE_ID}.sqlite")) as kv:
        counters = kv.execute(
            "SELECT value FROM kv WHERE key LIKE 'rl:sign_in:127.0.0.7:%'"
        ).fetchall()
    # One counter per window; the refusals neither wrote it past the limit nor made a user.
    assert [int(value) for (value,) in counters][-1] == SIGN_IN_LIMIT
    with closing(sqlite3.connect(edge.data_dir / "d1" / "sam.sqlite")) as db:
        assert db.execute("SELECT count(*) FROM users WHERE login = 'refused'").fetchone() == (0,)


def test_only_accepted_workspaces_count_and_the_refusal_is_in_plain_words(edge: Edge) -> None:
    start_of_a_fresh_window(600, needed_seconds=10)
    with closing(signed_in(edge, "creator")) as client:
        refused_spec = {"repository": "https://example.com/r.git;", "provider": "local"}
        for _ in range(CREATE_LIMIT + 3):  # mistakes cost nothing
            assert client.post("/api/workspaces", json=refused_spec).status_code == 400
        good = {"repository": "https://example.com/r.git", "provider": "local"}
        made = [client.post("/api/workspaces", json=good) for _ in range(CREATE_LIMIT)]
        assert [reply.status_code for reply in made] == [202] * CREATE_LIMIT
        limited = client.post("/api/workspaces", json=good)
        retry = assert_rate_limited(limited, 600)
        assert limited.json()["message"] == (
            f"You created {CREATE_LIMIT} workspaces in the last 10 minutes; "
            f"try again in {ratelimit.in_words(retry)}."
        )
        for reply in made:
            assert client.delete(f"/api/workspaces/{reply.json()['id']}").status_code == 204


def test_new_chats_count_against_the_workspace_limit(edge: Edge) -> None:
    """A new chat makes a workspace (its run does): it is limited as one made directly."""
    start_of_a_fresh_window(600, needed_seconds=10)
    with closing(signed_in(edge, "chatter")) as client:
        project = client.post("/api/projects", json={"repository": "https://example.com/c.git"})
        assert project.status_code == 201, project.text
        chats = f"/api/projects/{project.json()['id']}/chats"
        unknown = f"/api/projects/p{'0' * 32}/chats"
        for _ in range(CREATE_LIMIT + 1):  # a refused request costs nothing
            assert client.post(unknown, json={"message": "hi"}).status_code == 404
        made = [client.post(chats, json={"message": "hi"}) for _ in range(CREATE_LIMIT)]
        assert [reply.status_code for reply in made] == [201] * CREATE_LIMIT
        assert_rate_limited(client.post(chats, json={"message": "hi"}), 600)


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (1, "1 second"),
        (45, "45 seconds"),
        (60, "1 minute"),
        (61, "2 minutes"),
        (263, "5 minutes"),
        (600, "10 minutes"),
        (3600, "1 hour"),
        (5400, "2 hours"),
    ],
)
def test_durations_in_words_round_up(seconds: int, words: str) -> None:
    assert ratelimit.in_words(seconds) == words


# --- the window, on the KV twin --------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    # A multiple of 600, so windows of 60 and 600 s start exactly here.
    return ManualClock(1_800_000_000.0)


@pytest.fixture
def kv(tmp_path: Path, clock: ManualClock) -> Iterator[KVNamespace]:
    namespace = KVNamespace(tmp_path / "kv.sqlite", clock)
    yield namespace
    namespace.close()


def env_with(kv: KVNamespace, **vars: str) -> local_env.Env:
    return local_env.Env({"KV": kv, **vars})


def test_window_arithmetic() -> None:
    window = Window.at(1_000_059.5, 60)
    assert (window.start, window.end) == (1_000_020, 1_000_080)
    assert window.retry_after(1_000_059.5) == 21  # rounded up: never retry too early
    assert window.retry_after(1_000_079.99) == 1
    assert Window.at(1_000_080, 60).start == 1_000_080  # the boundary opens a new window
    # KV refuses TTLs under 60 s, and the counter must outlive its window.
    assert Window.at(0, 10).ttl(9) == ratelimit.KV_MIN_TTL_SECONDS
    assert Window.at(0, 3600).ttl(1) == 3599


async def test_counts_then_refuses_then_resets(kv: KVNamespace, clock: ManualClock) -> None:
    env, limit = env_with(kv), ratelimit.LIMITS["terminal_token"]
    for _ in range(limit.requests):
        await ratelimit.hit(env, limit, "u_1", clock)
    clock.advance(limit.window_seconds - 15)
    with pytest.raises(SamError) as refused:
        await ratelimit.hit(env, limit, "u_1", clock)
    assert status_for(refused.value) == 429 and refused.value.code == "rate_limited"
    assert error_reply(refused.value)[2] == {"Retry-After": "15"}
    assert refused.value.message == (
        "This account opened 60 terminal connections in the last minute; try again in 15 seconds."
    )
    # Another subject is counted apart.
    await ratelimit.hit(env, limit, "u_2", clock)
    # The counter lives under the documented key, and only as long as needed.
    start = int(clock.now()) - (limit.window_seconds - 15)
    key = f"rl:terminal_token:u_1:{start}"
    assert await kv.get(key) == str(limit.requests)
    clock.advance(15)
    await ratelimit.hit(env, limit, "u_1", clock)
    assert await kv.get(f"rl:terminal_token:u_1:{start + limit.window_seconds}") == "1"
    clock.advance(ratelimit.KV_MIN_TTL_SECONDS)
    assert await kv.get(key) is None


async def test_overrides_from_the_var(kv: KVNamespace, clock: ManualClock) -> None:
    env = env_with(kv, SAM_RATE_LIMITS="terminal_token=1/5 bootstrap=2/60")
    await ratelimit.hit(env, TERMINAL_TOKEN, "u_1", clock)
    clock.advance(1)
    with pytest.raises(SamError) as refused:
        await ratelimit.hit(env, TERMINAL_TOKEN, "u_1", clock)
    assert error_reply(refused.value)[2] == {"Retry-After": "4"}
    clock.advance(4)
    await ratelimit.hit(env, TERMINAL_TOKEN, "u_1", clock)
    # Limits the var does not name keep their defaults.
    for _ in range(SIGN_IN.requests):
        await ratelimit.hit(env, SIGN_IN, "192.0.2.1", clock)


@pytest.mark.parametrize(
    "raw",
    [
        "nonsense=1/60",
        "bootstrap",
        "bootstrap=1",
        "bootstrap=x/60",
        "bootstrap=0/60",
        "bootstrap=5/0",
        "bootstrap=-1/60",
    ],
)
def test_bad_overrides_name_the_var(raw: str) -> None:
    with pytest.raises(ConfigError, match="SAM_RATE_LIMITS"):
        ratelimit.overrides(raw)


@pytest.mark.parametrize(
    ("header", "subject"),
    [
        ("192.0.2.10", "192.0.2.10"),
        (" 192.0.2.10 ", "192.0.2.10"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:DB8:1:2::ffff", "2001:db8:1:2::/64"),
        (None, ratelimit.UNKNOWN_IP),
        ("", ratelimit.UNKNOWN_IP),
        ("not-an-address", ratelimit.UNKNOWN_IP),
        ("192.0.2.1, 10.0.0.1", ratelimit.UNKNOWN_IP),
    ],
)
def test_client_ip_subjects(header: str | None, subject: str) -> None:
    assert ratelimit.client_ip(header) == subject


# --- the per-user dependency, on the D1 and KV twins --------------------------------------


@pytest.fixture
async def runtime(tmp_path: Path, clock: ManualClock) -> AsyncIterator[local_env.Runtime]:
    built = local_env.build(
        load(ROOT / "wrangler.toml"),
        tmp_path / ".sam",
        clock,
        {"SAM_DOMAIN": "localhost:8787", "SAM_RATE_LIMITS": "terminal_token=2/60"},
    )
    yield built
    built.close()


def limited_app(env: Any, limit: Limit) -> Any:
    api = FastAPI()
    api.add_exception_handler(SamError, domain_error)

    @api.post("/limited", dependencies=[Depends(ratelimit.rate_limited(limit))])
    async def limited() -> dict[str, bool]:
        return {"ok": True}

    deployment = Deployment.of(env)

    async def with_deployment(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await api({**scope, "deployment": deployment}, receive, send)

    return with_deployment


async def test_per_user_limit_runs_after_sign_in(runtime: local_env.Runtime) -> None:
    env = runtime.env
    assert TERMINAL_TOKEN.per is Per.USER
    alice = await upsert_local_user(env.DATABASE, "alice")
    bob = await upsert_local_user(env.DATABASE, "bob")
    tokens = {}
    for user in (alice, bob):
        created = await api_tokens.create_token(env.DATABASE, user.id, "t")
        assert created is not None
        tokens[user.id] = created[1]
    transport = httpx.ASGITransport(app=limited_app(env, TERMINAL_TOKEN))
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:

        def as_(user_id: str) -> dict[str, str]:
            return {"authorization": f"Bearer {tokens[user_id]}"}

        # Anonymous callers are turned away by sign-in and never counted.
        for _ in range(3):
            assert (await client.post("/limited")).status_code == 401
        assert (await env.KV.list(prefix="rl:"))["keys"] == []
        assert (await client.post("/limited", headers=as_(alice.id))).status_code == 200
        assert (await client.post("/limited", headers=as_(alice.id))).status_code == 200
        refused = await client.post("/limited", headers=as_(alice.id))
        assert refused.status_code == 429 and 1 <= int(refused.headers["retry-after"]) <= 60
        assert refused.json()["error"] == "rate_limited"
        # Bob is counted apart, under his user id.
        assert (await client.post("/limited", headers=as_(bob.id))).status_code == 200
        # The dependency reads the wall clock (time.time(), as on Cloudflare).
        keys = [key["name"] for key in (await env.KV.list(prefix="rl:"))["keys"]]
        assert sorted(key.rsplit(":", 1)[0] for key in keys) == sorted(
            f"rl:terminal_token:{user.id}" for user in (alice, bob)
        )
        assert all(int(key.rsplit(":", 1)[1]) % 60 == 0 for key in keys)


def test_named_limits_are_sane() -> None:
    for name, limit in ratelimit.LIMITS.items():
        assert name == limit.name and limit.requests >= 1 and limit.window_seconds >= 1
    assert {limit.per for limit in (SIGN_IN, API_TOKEN, ratelimit.BOOTSTRAP)} == {Per.IP}
    assert {limit.per for limit in (TERMINAL_TOKEN, ratelimit.WORKSPACE_CREATE)} == {Per.USER}
