"""Installing the App and the project picker, through the real local edge and the
loopback GitHub (which plays both the OAuth sign-in and the App).

Covers: the install URL and its state; the setup callback recording the user's own
installation and refusing someone else's, an unknown id, a non-numeric id, a replayed
state, another user's state and an expired one (injected clock); a user without a kept
GitHub token told to sign in again; repositories across the user's installations and a
repository's branches, nobody else's; the user token sealed at rest; and a deployment
without the App answering what to configure.
"""

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.fakes.github import FakeGitHub
from tests.support.edge import Edge, running_edge, signed_in, with_secrets
from tests.support.github_sign_in import Browser
from twin.clock import ManualClock
from worker.deployment import Deployment
from worker.errors import InvalidInput
from worker.github import installations, setup

INSTALL = "/api/github/install"
SETUP = "/api/github/setup"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory, github: FakeGitHub) -> Iterator[Edge]:
    data_dir: Path = with_secrets(
        tmp_path_factory.mktemp("github-app") / ".sam", github.app_secrets()
    )
    variables = {**github.vars(users="alice, bob, carol"), **github.app_public_vars()}
    with running_edge(data_dir, vars=variables) as running:
        yield running


def browser_of(edge: Edge, github: FakeGitHub, login: str) -> Browser:
    browser = Browser(edge)
    browser.sign_in(github, login)
    return browser


def start_install(browser: Browser, github: FakeGitHub) -> str:
    """GET the install route; the state GitHub would carry back."""
    response = browser.get(INSTALL)
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == (
        f"{github.url}/apps/{github.app_slug}/installations/new"
    )
    return parse_qs(location.query)["state"][0]


def installation_of(github: FakeGitHub, account: str) -> int:
    [found] = [each.id for each in github.installations.values() if each.account == account]
    return found


def back_from_github(browser: Browser, installation_id: object, state: str) -> httpx.Response:
    params = {"installation_id": str(installation_id), "setup_action": "install", "state": state}
    return browser.get(SETUP, params=params)


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"] == code
    return response.json()["message"]


def installed(browser: Browser) -> list[int]:
    listed = browser.get("/api/github/installations")
    assert listed.status_code == 200, listed.text
    return [each["id"] for each in listed.json()["installations"]]


def test_the_users_own_installation_is_recorded_and_lists_its_repositories(
    edge: Edge, github: FakeGitHub
) -> None:
    alice = browser_of(edge, github, "alice")
    state = start_install(alice, github)
    own = installation_of(github, "alice")

    back = back_from_github(alice, own, state)

    assert back.status_code == 302, back.text
    assert back.headers["location"] == f"{alice.origin}/?github_installation={own}"
    assert installed(alice) == [own]
    assert alice.get("/api/deployment").json()["github_app"] is True
    repositories = alice.get("/api/github/repositories")
    assert repositories.status_code == 200, repositories.text
    assert [
        (r["full_name"], r["installation_id"]) for r in repositories.json()["repositories"]
    ] == [
        ("alice/api", own),
        ("alice/web", own),
    ]
    assert repositories.json()["repositories"][0]["clone_url"] == f"{github.url}/alice/api.git"
    branches = alice.get("/api/github/repositories/alice/api/branches")
    assert branches.status_code == 200, branches.text
    assert branches.json()["branches"] == [
        {"name": "dev", "sha": "b" * 40, "protected": False},
        {"name": "main", "sha": "a" * 40, "protected": False},
    ]
    # The branch list was read with a token for that one repository, metadata only.
    [grant] = [g for g in github.tokens.values() if g.repositories == ("alice/api",)]
    assert grant.permissions == {"metadata": "read"}

    # The same state again: spent.
    message = assert_error(back_from_github(alice, own, state), 400, "github_setup_state_invalid")
    assert "already used" in message and INSTALL in message


def test_someone_elses_installation_is_refused(edge: Edge, github: FakeGitHub) -> None:
    bob = browser_of(edge, github, "bob")
    theirs = installation_of(github, "acme")  # carol's organisation, not bob's

    refused = back_from_github(bob, theirs, start_install(bob, github))

    message = assert_error(refused, 403, "github_installation_not_yours")
    assert str(theirs) in message and INSTALL in message
    assert theirs not in installed(bob)
    # Nor can bob see its repositories or branches.
    assert bob.get("/api/github/repositories").json()["repositories"] == []
    assert_error(bob.get("/api/github/repositories/acme/ops/branches"), 404, "repository_not_found")
    assert_error(
        bob.get("/api/github/repositories/nobody/nothing/branches"), 404, "repository_not_found"
    )


@pytest.mark.parametrize(
    ("installation_id", "status", "code"),
    [
        ("12abc", 400, "github_installation_id_invalid"),
        ("-5", 400, "github_installation_id_invalid"),
        ("", 400, "github_installation_id_invalid"),
        ("99999999", 403, "github_installation_not_yours"),
    ],
)
def test_bad_installation_ids_are_refused(
    edge: Edge, github: FakeGitHub, installation_id: str, status: int, code: str
) -> None:
    carol = browser_of(edge, github, "carol")
    refused = back_from_github(carol, installation_id, start_install(carol, github))
    assert_error(refused, status, code)
    assert installed(carol) == []


def test_a_state_is_bound_to_the_user_who_started(edge: Edge, github: FakeGitHub) -> None:
    alice, bob = browser_of(edge, github, "alice"), browser_of(edge, github, "bob")
    alices_state = start_install(alice, github)

    stolen = back_from_github(bob, installation_of(github, "bob"), alices_state)
    assert "another user" in assert_error(stolen, 400, "github_setup_state_invalid")
    # Not spent by the stranger: alice can still finish.
    finished = back_from_github(alice, installation_of(github, "alice"), alices_state)
    assert finished.status_code == 302, finished.text
    made_up = back_from_github(bob, installation_of(github, "bob"), "made-up-state")
    assert_error(made_up, 400, "github_setup_state_invalid")


def test_an_org_members_request_has_nothing_to_record(edge: Edge, github: FakeGitHub) -> None:
    carol = browser_of(edge, github, "carol")
    requested = carol.get(SETUP, params={"setup_action": "request"})
    assert requested.status_code == 302
    assert requested.headers["location"].endswith("/?github_setup=requested")


def test_without_a_kept_github_token_the_user_is_told_to_sign_in_again(
    edge: Edge, github: FakeGitHub
) -> None:
    client = signed_in(edge, "devuser")  # dev sign-in: GitHub never vouched for it
    made = client.get(INSTALL)
    assert made.status_code == 302
    state = parse_qs(urlsplit(made.headers["location"]).query)["state"][0]
    refused = client.get(
        SETUP, params={"installation_id": installation_of(github, "bob"), "state": state}
    )
    client.close()
    assert "sign in with GitHub again" in assert_error(refused, 409, "github_sign_in_needed")


def test_no_github_secret_is_stored_in_clear_or_logged(edge: Edge, github: FakeGitHub) -> None:
    alice = browser_of(edge, github, "alice")
    back_from_github(alice, installation_of(github, "alice"), start_install(alice, github))
    assert alice.get("/api/github/repositories").status_code == 200  # mints a token
    with closing(sqlite3.connect(edge.data_dir / "d1" / "sam.sqlite")) as db:
        stored = db.execute("SELECT nonce, ciphertext FROM github_user_tokens").fetchall()
    assert stored  # the user token is kept, sealed
    stores = [
        path.read_bytes()
        for folder in ("d1", "kv")
        for path in (edge.data_dir / folder).iterdir()
        if path.is_file()
    ]
    key_body = github.app_secrets()["SAM_GITHUB_APP_PRIVATE_KEY"].splitlines()[1]
    secrets = [*github.user_tokens("alice"), *github.tokens, key_body]
    assert len(secrets) > 2
    log = edge.log()
    for secret in secrets:
        assert secret not in log
        assert all(secret.encode() not in store for store in stores)


async def test_an_expired_state_is_refused(deployment: Deployment, clock: ManualClock) -> None:
    user_id = "u_expiry"
    insert = "INSERT INTO users (id, login) VALUES (?, 'expiry')"
    await deployment.env.DATABASE.prepare(insert).bind(user_id).run()
    await installations.save_user_token(deployment, user_id, "gho_unused")
    url = await setup.install_url(deployment, user_id)
    state = parse_qs(urlsplit(url).query)["state"][0]

    clock.advance(setup.INSTALL_STATE_TTL_SECONDS + 1)

    with pytest.raises(InvalidInput, match="unknown, expired or already used"):
        await setup.complete_setup(deployment, user_id, "1", state)


def test_a_deployment_without_the_app_says_what_to_configure(
    tmp_path: Path, github: FakeGitHub
) -> None:
    with running_edge(tmp_path / ".sam", vars=github.vars(users="alice")) as bare:
        client = signed_in(bare, "alice")
        assert client.get("/api/deployment").json()["github_app"] is False
        for path in (INSTALL, "/api/github/installations", "/api/github/repositories"):
            answer = client.get(path)
            message = assert_error(answer, 503, "github_app_not_configured")
            assert "SAM_GITHUB_APP_PRIVATE_KEY" in message and "docs/github-app.md" in message
        client.close()


@pytest.mark.parametrize(
    ("fault", "code", "said"),
    [
        ((503, {}), "github_unavailable", "answered 503"),
        (
            (403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1767225600"}),
            "github_rate_limited",
            "resets the limit at 1767225600",
        ),
    ],
)
def test_github_failing_is_a_502_that_says_what_failed(
    edge: Edge,
    github: FakeGitHub,
    fault: tuple[int, dict[str, str]],
    code: str,
    said: str,
) -> None:
    alice = browser_of(edge, github, "alice")
    github.app_fault = fault
    try:
        for path in ("/api/github/repositories", "/api/github/repositories/alice/api/branches"):
            assert said in assert_error(alice.get(path), 502, code)
    finally:
        github.app_fault = None


def test_a_sign_in_client_that_is_not_the_app_is_named(edge: Edge, github: FakeGitHub) -> None:
    carol = browser_of(edge, github, "carol")
    state = start_install(carol, github)
    github.client_is_app = False
    try:
        refused = back_from_github(carol, installation_of(github, "acme"), state)
    finally:
        github.client_is_app = True
    message = assert_error(refused, 503, "github_sign_in_not_the_app")
    assert "SAM_GITHUB_CLIENT_ID" in message


def test_a_revoked_sign_in_token_asks_for_a_new_sign_in(edge: Edge, github: FakeGitHub) -> None:
    carol = browser_of(edge, github, "carol")
    state = start_install(carol, github)
    github.revoke_user_tokens("carol")  # the user revoked SAM's authorization on GitHub
    refused = back_from_github(carol, installation_of(github, "acme"), state)
    assert "sign in with GitHub again" in assert_error(refused, 409, "github_sign_in_needed")
