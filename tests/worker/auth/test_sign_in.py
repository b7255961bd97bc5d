"""Sign-in, sessions, CSRF and API tokens, through the real local edge and a loopback GitHub.

Cookies are handled by hand (not by httpx's jar, which keys them by 127.0.0.1 rather than
by the Host header) so that each test says exactly what a browser would send.
"""

import hashlib
import secrets
import sqlite3
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fakes.github import CLIENT_ID, CLIENT_SECRET, FakeGitHub
from tests.support.edge import Edge, running_edge
from tests.support.github_sign_in import CALLBACK, LOGIN, Browser, set_cookies
from tests.support.wait import bearer
from worker.config import Config, ConfigError

RACERS = 16


# Who may sign in: these logins, and active members of the ACME organisation.
ALLOWED_USERS = "alice, bob, carol, private"
ALLOWED_ORGS = "ACME"


def github_vars(github: FakeGitHub) -> dict[str, str]:
    return github.vars(users=ALLOWED_USERS, orgs=ALLOWED_ORGS)


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        for login in ("alice", "bob", "carol", "dave", "erin"):
            fake.add_account(login, name=login.title(), email=f"{login}@example.com")
        fake.add_account("private", name="Private Person", private_email="hidden@example.com")
        fake.accounts["dave"].orgs["acme"] = "active"
        fake.accounts["erin"].orgs["Acme"] = "active"
        fake.add_account("mallory", name="Mallory").orgs["evilcorp"] = "active"
        fake.add_account("invitee", name="Invitee").orgs["acme"] = "pending"
        fake.default_login = "alice"
        yield fake


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, github: FakeGitHub) -> Iterator[Edge]:
    data_dir: Path = tmp_path_factory.mktemp("auth") / ".sam"
    with running_edge(data_dir, vars=github_vars(github)) as running:
        yield running


def raw_set_cookie(response: httpx.Response, name: str) -> str:
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(name + "=")]
    return header


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    assert response.json()["message"]


# --- the OAuth round trip ---------------------------------------------------------------


def test_login_redirects_to_github_with_state_and_s256_challenge(
    edge: Edge, github: FakeGitHub
) -> None:
    browser = Browser(edge)
    response = browser.get(LOGIN)
    assert response.status_code == 302
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{github.url}/login/oauth/authorize"
    )
    query = {k: v[0] for k, v in parse_qs(location.query).items()}
    assert query["client_id"] == CLIENT_ID
    assert query["code_challenge_method"] == "S256"
    assert len(query["code_challenge"]) == 43  # base64url of 32 bytes, unpadded
    assert len(query["state"]) >= 32
    assert query["redirect_uri"] == f"http://{edge.host('app')}{CALLBACK}"
    assert query["scope"].split() == ["read:user", "user:email", "read:org"]
    preauth = raw_set_cookie(response, "sam_oauth")
    assert "HttpOnly" in preauth and "SameSite=lax" in preauth
    # A second login gets a fresh state and challenge.
    again = Browser(edge).start_login()
    assert again["state"] != query["state"]
    assert again["code_challenge"] != query["code_challenge"]


def test_login_on_the_api_host_moves_to_the_app_host(edge: Edge) -> None:
    response = Browser(edge).get(LOGIN, host="api")
    assert response.status_code == 302
    assert response.headers["location"] == f"http://{edge.host('app')}{LOGIN}"
    assert "set-cookie" not in response.headers


def test_full_round_trip_and_private_email(edge: Edge, github: FakeGitHub) -> None:
    browser = Browser(edge)
    me = browser.sign_in(github, "carol")
    assert me["login"] == "carol"
    assert me["name"] == "Carol"
    assert me["email"] == "carol@example.com"
    assert str(me["id"]).startswith("u_")
    assert me["avatar_url"].startswith(github.url)
    # The exchange carried the PKCE verifier matching the challenge that was sent.
    exchange = github.exchanges[-1]
    assert exchange["code_verifier"] and exchange["client_id"] == CLIENT_ID
    # Signing in again is the same user.
    assert Browser(edge).sign_in(github, "carol")["id"] == me["id"]
    # An account whose email is private: read from /user/emails.
    assert Browser(edge).sign_in(github, "private")["email"] == "hidden@example.com"


def test_session_cookie_attributes_on_http(edge: Edge, github: FakeGitHub) -> None:
    browser = Browser(edge)
    response = browser.callback(browser.approve(github, browser.start_login(), "dave"))
    cookie = raw_set_cookie(response, "sam_session")
    attributes = [part.strip().lower() for part in cookie.split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes
    assert "path=/" in attributes
    assert "secure" not in attributes
    assert not any(part.startswith("domain=") for part in attributes)
    assert f"max-age={14 * 24 * 3600}" in attributes
    # The pre-auth cookie is spent.
    assert set_cookies(response)["sam_oauth"]["max-age"] == "0"


def test_session_cookie_is_secure_on_https(edge: Edge, github: FakeGitHub) -> None:
    browser = Browser(edge, scheme="https")
    query = browser.start_login()
    assert query["redirect_uri"] == f"https://{edge.host('app')}{CALLBACK}"
    response = browser.callback(browser.approve(github, query, "dave"))
    assert response.headers["location"] == f"https://{edge.host('app')}/"
    attributes = [p.strip().lower() for p in raw_set_cookie(response, "sam_session").split(";")]
    assert "secure" in attributes and "httponly" in attributes
    assert browser.get("/api/auth/me").json()["login"] == "dave"


# --- hostile callbacks ------------------------------------------------------------------


def assert_no_session(response: httpx.Response) -> None:
    assert "sam_session" not in set_cookies(response)


def test_unknown_state_is_refused(edge: Edge, github: FakeGitHub) -> None:
    browser = Browser(edge)
    params = browser.approve(github, browser.start_login(), "alice")
    response = browser.callback({**params, "state": secrets.token_urlsafe(32)})
    assert_error(response, 400, "oauth_state_invalid")
    assert_no_session(response)


def test_missing_code_or_state_is_refused(edge: Edge) -> None:
    browser = Browser(edge)
    browser.start_login()
    for params in ({}, {"code": "abc"}, {"state": "abc"}):
        response = browser.callback(params)
        assert_error(response, 400, "oauth_state_invalid")
        assert_no_session(response)


def test_a_state_is_used_once(edge: Edge, github: FakeGitHub) -> None:
    browser = Browser(edge)
    params = browser.approve(github, browser.start_login(), "alice")
    preauth = browser.cookies["sam_oauth"]
    assert browser.callback(params).status_code == 302
    # Replayed with the same pre-auth cookie and a new code for the same state.
    browser.cookies = {"sam_oauth": preauth}
    replay = browser.callback(params)
    assert_error(replay, 400, "oauth_state_invalid")
    assert_no_session(replay)


def test_a_state_from_another_browser_is_refused(edge: Edge, github: FakeGitHub) -> None:
    victim, attacker = Browser(edge), Browser(edge)
    params = victim.approve(github, victim.start_login(), "alice")
    attacker.start_login()  # the attacker has a pre-auth cookie of their own
    response = attacker.callback(params)
    assert_error(response, 400, "oauth_state_invalid")
    assert_no_session(response)
    nobody = Browser(edge)  # no pre-auth cookie at all
    assert_error(nobody.callback(params), 400, "oauth_state_invalid")
    # The stranger's attempts did not spend the real sign-in.
    assert victim.callback(params).status_code == 302
    assert victim.get("/api/auth/me").status_code == 200


def test_a_code_with_another_flows_verifier_is_refused(edge: Edge, github: FakeGitHub) -> None:
    """PKCE: a code issued for one challenge cannot be redeemed with another verifier."""
    browser = Browser(edge)
    intercepted = browser.approve(github, browser.start_login(), "alice")
    second = browser.start_login()  # a fresh state (and verifier) in the same browser
    response = browser.callback({"code": intercepted["code"], "state": second["state"]})
    assert_error(response, 400, "oauth_failed")
    assert "code_verifier" in response.json()["message"]
    assert_no_session(response)


def test_the_fake_refuses_an_exchange_without_verifier(github: FakeGitHub) -> None:
    """The other half of PKCE, pinned on the fake: no verifier, no token."""
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    reply = httpx.get(
        f"{github.url}/login/oauth/authorize",
        params={
            "client_id": CLIENT_ID,
            "redirect_uri": "http://app.localhost/cb",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "login": "alice",
        },
    )
    code = parse_qs(urlsplit(reply.headers["location"]).query)["code"][0]
    token = httpx.post(
        f"{github.url}/login/oauth/access_token",
        data={"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "code": code},
        headers={"accept": "application/json"},
    )
    assert token.status_code == 200
    assert token.json()["error"] == "bad_verification_code"


def test_a_code_is_redeemed_once(edge: Edge, github: FakeGitHub) -> None:
    browser = Browser(edge)
    params = browser.approve(github, browser.start_login(), "alice")
    assert browser.callback(params).status_code == 302
    other = Browser(edge)
    fresh = other.start_login()
    response = other.callback({"code": params["code"], "state": fresh["state"]})
    assert_error(response, 400, "oauth_failed")
    assert_no_session(response)


def test_github_refusing_or_failing_is_a_clear_error(edge: Edge, github: FakeGitHub) -> None:
    browser = Browser(edge)
    denied = browser.callback({"error": "access_denied", "state": "x"})
    assert_error(denied, 400, "oauth_denied")
    params = browser.approve(github, browser.start_login(), "alice")
    github.user_status = 500
    try:
        response = browser.callback(params)
    finally:
        github.user_status = 200
    assert_error(response, 502, "github_unavailable")
    assert_no_session(response)


# --- who may sign in ----------------------------------------------------------------------


def test_only_named_users_and_members_of_named_organisations_sign_in(
    edge: Edge, github: FakeGitHub
) -> None:
    assert Browser(edge).sign_in(github, "bob")["login"] == "bob"  # named
    assert Browser(edge).sign_in(github, "dave")["login"] == "dave"  # an active ACME member
    for login in ("mallory", "invitee"):  # another organisation; a pending invitation
        browser = Browser(edge)
        response = browser.callback(browser.approve(github, browser.start_login(), login))
        assert_error(response, 403, "sign_in_not_allowed")
        message = response.json()["message"]
        assert f"{login!r} may not sign in" in message and "acme" in message
        assert "operator" in message
        assert_no_session(response)
        assert_error(browser.get("/api/auth/me"), 401, "unauthorized")
    with closing(sqlite3.connect(edge.data_dir / "d1" / "sam.sqlite")) as db:
        stored = {row[0] for row in db.execute("SELECT login FROM users")}
    assert "mallory" not in stored and "invitee" not in stored


def test_a_deployment_that_names_nobody_lets_nobody_in(tmp_path: Path, github: FakeGitHub) -> None:
    with running_edge(tmp_path / ".sam", vars=github.vars()) as edge:
        browser = Browser(edge)
        query = browser.start_login()
        assert "read:org" not in query["scope"].split()  # no organisations named: not asked
        response = browser.callback(browser.approve(github, query, "alice"))
        assert_error(response, 403, "sign_in_not_allowed")
        assert "SAM_ALLOWED_GITHUB_USERS" in response.json()["message"]
        assert_no_session(response)


@pytest.mark.parametrize("value", ["alice;rm -rf /", "-alice", "al--ice", "a" * 40])
def test_a_malformed_allowed_login_stops_the_deployment_with_its_name(value: str) -> None:
    env = SimpleNamespace(SAM_DOMAIN="example.com", SAM_ALLOWED_GITHUB_USERS=f"bob,{value}")
    with pytest.raises(ConfigError, match="SAM_ALLOWED_GITHUB_USERS"):
        Config.from_env(env)


# --- sessions ---------------------------------------------------------------------------


def test_me_without_a_session_is_401(edge: Edge) -> None:
    response = Browser(edge).get("/api/auth/me")
    assert_error(response, 401, "unauthorized")
    assert f"http://{edge.host('app')}/" in response.json()["message"]
    forged = Browser(edge)
    forged.cookies["sam_session"] = secrets.token_urlsafe(32)
    assert_error(forged.get("/api/auth/me"), 401, "unauthorized")


def test_logout_revokes_the_session(edge: Edge, github: FakeGitHub) -> None:
    browser = Browser(edge)
    browser.sign_in(github, "erin")
    old_cookie = dict(browser.cookies)
    # Without a same-origin Origin, sign-out is refused and the session stays.
    refused = browser.post("/api/auth/logout", origin=False)
    assert_error(refused, 403, "cross_origin_request")
    assert browser.get("/api/auth/me").status_code == 200
    response = browser.post("/api/auth/logout")
    assert response.status_code == 204
    assert set_cookies(response)["sam_session"]["max-age"] == "0"
    assert "sam_session" not in browser.cookies
    # The old cookie, replayed, no longer works.
    browser.cookies = old_cookie
    assert_error(browser.get("/api/auth/me"), 401, "unauthorized")


def test_cookie_writes_need_a_same_origin_signal(edge: Edge, github: FakeGitHub) -> None:
    browser = Browser(edge)
    browser.sign_in(github, "erin")
    body = {"json": {"name": "csrf"}}
    assert_error(browser.post("/api/tokens", origin=False, **body), 403, "cross_origin_request")
    evil = {"origin": "http://evil.example"}
    assert_error(browser.post("/api/tokens", headers=evil, **body), 403, "cross_origin_request")
    sibling = {"origin": f"http://{edge.host('ws-abc')}"}
    assert_error(browser.post("/api/tokens", headers=sibling, **body), 403, "cross_origin_request")
    https = {"origin": f"https://{edge.host('app')}"}  # wrong scheme is another origin
    assert_error(browser.post("/api/tokens", headers=https, **body), 403, "cross_origin_request")
    assert browser.post("/api/tokens", **body).status_code == 201
    same_site = {"sec-fetch-site": "same-origin"}
    assert browser.post("/api/tokens", origin=False, headers=same_site, **body).status_code == 201
    # Reads need no Origin.
    assert browser.get("/api/tokens").status_code == 200


# --- API tokens -------------------------------------------------------------------------


def test_api_tokens(edge: Edge, github: FakeGitHub) -> None:
    owner, stranger = Browser(edge), Browser(edge)
    owner_me = owner.sign_in(github, "bob")
    stranger.sign_in(github, "carol")
    created = owner.post("/api/tokens", json={"name": "laptop cli"})
    assert created.status_code == 201, created.text
    token, token_id = created.json()["token"], created.json()["id"]
    assert token.startswith("sam_pat_") and len(token) > 40
    assert created.json()["name"] == "laptop cli"

    with edge.client("api") as api:
        me = api.get("/api/auth/me", headers=bearer(token))
        assert me.status_code == 200 and me.json()["id"] == owner_me["id"]
        # A bearer POST needs no Origin: it carries no ambient credential.
        assert (
            api.post("/api/tokens", json={"name": "ci"}, headers=bearer(token)).status_code == 201
        )

    listing = owner.get("/api/tokens")
    assert listing.status_code == 200
    assert token not in listing.text
    assert hashlib.sha256(token.encode()).hexdigest() not in listing.text
    (entry,) = [t for t in listing.json()["tokens"] if t["id"] == token_id]
    assert set(entry) == {"id", "name", "created_at", "last_used_at"}
    assert entry["last_used_at"] is not None
    # The stranger sees none of the owner's tokens and cannot revoke them.
    assert token_id not in stranger.get("/api/tokens").text
    assert_error(stranger.request("DELETE", f"/api/tokens/{token_id}"), 404, "token_not_found")
    with edge.client("api") as api:
        assert api.get("/api/auth/me", headers=bearer(token)).status_code == 200

    assert owner.request("DELETE", f"/api/tokens/{token_id}").status_code == 204
    assert_error(owner.request("DELETE", f"/api/tokens/{token_id}"), 404, "token_not_found")
    with edge.client("api") as api:
        assert_error(api.get("/api/auth/me", headers=bearer(token)), 401, "unauthorized")
    assert token_id not in owner.get("/api/tokens").text


def test_bad_bearer_tokens_are_401_and_never_fall_back_to_the_cookie(
    edge: Edge, github: FakeGitHub
) -> None:
    browser = Browser(edge)
    browser.sign_in(github, "bob")
    for header in (
        "Bearer sam_pat_" + secrets.token_urlsafe(32),
        "Bearer nonsense",
        "Basic Ym9iOnB3",
        "Bearer sam_pat_' OR 1=1 --",
        "Bearer",
    ):
        response = browser.get("/api/auth/me", headers={"authorization": header})
        assert_error(response, 401, "unauthorized")


def test_token_names_are_validated(edge: Edge, github: FakeGitHub) -> None:
    browser = Browser(edge)
    browser.sign_in(github, "bob")
    for body in ({}, {"name": ""}, {"name": "   "}, {"name": "x" * 101}, {"name": "a\nb"}):
        assert_error(browser.post("/api/tokens", json=body), 400, "invalid_request")
    anonymous = Browser(edge)
    assert_error(anonymous.post("/api/tokens", json={"name": "x"}), 401, "unauthorized")


def test_secrets_are_stored_only_hashed(edge: Edge, github: FakeGitHub) -> None:
    browser = Browser(edge)
    browser.sign_in(github, "bob")
    session_id = browser.cookies["sam_session"]
    token = browser.post("/api/tokens", json={"name": "hash check"}).json()["token"]
    with edge.client("api") as api:  # used once, so last_used_at is written too
        assert api.get("/api/auth/me", headers=bearer(token)).status_code == 200
    stored = b"".join(path.read_bytes() for path in edge.data_dir.rglob("*") if path.is_file())
    assert token.encode() not in stored
    assert token.removeprefix("sam_pat_").encode() not in stored
    assert hashlib.sha256(token.encode()).hexdigest().encode() in stored
    assert session_id.encode() not in stored
    assert hashlib.sha256(session_id.encode()).hexdigest().encode() in stored
    assert token not in edge.log() and session_id not in edge.log()


# --- dev sign-in, admin, restarts --------------------------------------------------------


def test_dev_login_in_development(edge: Edge) -> None:
    browser = Browser(edge)
    response = browser.post("/api/auth/dev-login", json={"login": "devuser"})
    assert response.status_code == 200, response.text
    assert response.json()["login"] == "devuser"
    assert "sam_session" in set_cookies(response)
    me = browser.get("/api/auth/me").json()
    assert me["login"] == "devuser" and me["id"] == response.json()["id"]
    # The same login is the same local user.
    again = Browser(edge).post("/api/auth/dev-login", json={"login": "devuser"})
    assert again.json()["id"] == me["id"]
    for bad in ("", "a b", "x" * 40, "'; DROP TABLE users; --", "-leading"):
        assert_error(
            browser.post("/api/auth/dev-login", json={"login": bad}), 400, "invalid_request"
        )
    evil = {"origin": "http://evil.example"}
    refused = Browser(edge).post("/api/auth/dev-login", json={"login": "devuser"}, headers=evil)
    assert_error(refused, 403, "cross_origin_request")
    assert_no_session(refused)


def test_first_user_is_admin_and_sessions_survive_a_restart(
    tmp_path: Path, github: FakeGitHub
) -> None:
    data_dir = tmp_path / ".sam"
    with running_edge(data_dir, vars=github_vars(github)) as edge:
        first, second = Browser(edge), Browser(edge)
        assert first.sign_in(github, "alice")["is_admin"] is True
        assert second.sign_in(github, "bob")["is_admin"] is False
        # Signing in again keeps the role.
        assert Browser(edge).sign_in(github, "alice")["is_admin"] is True
        token = first.post("/api/tokens", json={"name": "survivor"}).json()["token"]
        cookies = dict(first.cookies)
        port = edge.port
    with running_edge(data_dir, port=port, vars=github_vars(github)) as edge:
        browser = Browser(edge)
        browser.cookies = cookies
        me = browser.get("/api/auth/me")
        assert me.status_code == 200 and me.json()["login"] == "alice"
        with edge.client("api") as api:
            assert api.get("/api/auth/me", headers=bearer(token)).json()["login"] == "alice"


def test_concurrent_first_sign_ins_make_exactly_one_admin(tmp_path: Path) -> None:
    logins = [f"racer{n}" for n in range(RACERS)]
    with running_edge(tmp_path / ".sam") as edge:

        def sign_in(login: str) -> bool:
            with edge.client("app") as client:
                response = client.post("/api/auth/dev-login", json={"login": login})
            assert response.status_code == 200, response.text
            return response.json()["is_admin"]

        with ThreadPoolExecutor(RACERS) as pool:
            admins = list(pool.map(sign_in, logins))
    assert admins.count(True) == 1


def test_production_refuses_dev_login_and_explains_missing_github(tmp_path: Path) -> None:
    with running_edge(tmp_path / ".sam", vars={"SAM_ENVIRONMENT": "production"}) as edge:
        browser = Browser(edge)
        response = browser.post("/api/auth/dev-login", json={"login": "mallory"})
        assert_error(response, 403, "dev_login_disabled")
        assert "SAM_ENVIRONMENT=development" in response.json()["message"]
        assert_no_session(response)
        assert_error(browser.get("/api/auth/me"), 401, "unauthorized")
        # No GitHub app configured: the operator is told what to set.
        missing = browser.get(LOGIN)
        assert_error(missing, 503, "github_not_configured")
        assert "SAM_GITHUB_CLIENT_ID" in missing.json()["message"]
        assert "SAM_GITHUB_CLIENT_SECRET" in missing.json()["message"]
