"""Tasks in the web app (issue 12 item 6), on an edge with the GitHub App (the loopback GitHub).

The user installs the App from New project, picks a repository and a branch from what the
App reaches, and the project is made from them.
"""

import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.support import app_url
from tests.fakes.github import FakeGitHub
from tests.support.edge import Edge, running_edge, with_secrets
from tests.support.github_sign_in import Browser as SignInBrowser

ALICE = "tasks-alice"
BOB = "tasks-bob"
MALLORY = "tasks-mallory"
SESSION_COOKIE = "sam_session"
AVATARS_ORIGIN = "https://avatars.githubusercontent.com"
# The smallest PNG (one transparent pixel): what GitHub's avatar host answers here.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d4944415478da63f8ffff3f0005fe02fea7d6a4f40000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        for login in (ALICE, BOB, MALLORY):
            account = fake.add_account(login, name=login.title(), email=f"{login}@example.com")
            account.avatar_url = f"{AVATARS_ORIGIN}/u/{account.id}?v=4"
        yield fake


@pytest.fixture(scope="module")
def github_edge(tmp_path_factory: pytest.TempPathFactory, github: FakeGitHub) -> Iterator[Edge]:
    data_dir: Path = with_secrets(tmp_path_factory.mktemp("tasks") / ".sam", github.app_secrets())
    variables = {**github.vars(users=f"{ALICE}, {BOB}, {MALLORY}"), **github.app_public_vars()}
    with running_edge(data_dir, vars=variables) as running:
        yield running


def sign_in_with_github(
    context: BrowserContext, edge: Edge, github: FakeGitHub, login: str
) -> SignInBrowser:
    """A GitHub sign-in session (the OAuth flow against the loopback GitHub) for `context`;
    the same session outside the browser, returned."""
    browser = SignInBrowser(edge)
    browser.sign_in(github, login)
    cookie = browser.cookies[SESSION_COOKIE]
    context.add_cookies([{"name": SESSION_COOKIE, "value": cookie, "url": app_url(edge)}])
    # No request leaves the machine: GitHub's avatar host is answered here.
    context.route(
        f"{AVATARS_ORIGIN}/**",
        lambda route: route.fulfill(status=200, content_type="image/png", body=PIXEL_PNG),
    )
    return browser


def record_installation(browser: SignInBrowser, github: FakeGitHub, installation_id: int) -> None:
    """The App's install → GitHub → setup round trip, without the browser."""
    started = browser.get("/api/github/install")
    assert started.status_code == 302, started.text
    state = parse_qs(urlsplit(started.headers["location"]).query)["state"][0]
    query = {"installation_id": str(installation_id), "setup_action": "install", "state": state}
    back = browser.get("/api/github/setup", params=query)
    assert back.status_code == 302, back.text


def test_a_project_from_a_repository_the_github_app_reaches(
    page: Page, context: BrowserContext, github_edge: Edge, github: FakeGitHub
) -> None:
    github.add_repository(
        ALICE,
        "notes",
        private=True,
        default_branch="trunk",
        branches={"trunk": "a" * 40, "dev": "b" * 40},
    )
    github.add_repository(MALLORY, "secret-plans", branches={"main": "c" * 40})
    installation = github.install(ALICE, ["notes"], users={ALICE})
    github.install(MALLORY, ["secret-plans"], users={MALLORY})
    sign_in_with_github(context, github_edge, github, ALICE)

    # Before the App is installed for this user, New project says how to get a picker.
    page.goto(app_url(github_edge, "/projects/new"))
    expect(page.get_by_text("reaches none of your repositories yet")).to_be_visible()
    github.setup_url = app_url(github_edge, "/api/github/setup")
    github.installs_next = installation.id
    page.get_by_role("link", name="Install the GitHub App").click()
    page.wait_for_url(re.compile(rf"/\?github_installation={installation.id}$"))

    page.goto(app_url(github_edge, "/projects/new"))
    picker = page.get_by_label("GitHub repository")
    # Only what the user's own installation reaches: not another user's repository.
    expect(picker.locator("option")).to_have_text(
        ["Choose one, or enter a URL below", f"{ALICE}/notes (private)"]
    )
    picker.select_option(f"{ALICE}/notes")
    expect(page.get_by_label("Repository", exact=True)).to_have_value(
        f"{github.url}/{ALICE}/notes.git"
    )
    branch = page.get_by_label("Default branch")
    expect(branch.locator("option")).to_have_text(["trunk", "dev"])
    expect(branch).to_have_value("trunk")
    branch.select_option("dev")

    page.get_by_role("button", name="Create project").click()
    page.wait_for_url("**/projects/*")
    expect(page.get_by_text(f"{github.url}/{ALICE}/notes.git")).to_be_visible()
    expect(page.get_by_text("· dev")).to_be_visible()


def test_github_failing_is_said_and_retried_from_the_picker(
    page: Page, context: BrowserContext, github_edge: Edge, github: FakeGitHub
) -> None:
    github.add_repository(BOB, "tools", private=False, branches={"main": "d" * 40})
    installation = github.install(BOB, ["tools"], users={BOB})
    browser = sign_in_with_github(context, github_edge, github, BOB)
    record_installation(browser, github, installation.id)

    github.app_fault = (502, {})
    try:
        page.goto(app_url(github_edge, "/projects/new"))
        expect(page.get_by_role("alert")).to_contain_text("GitHub")
    finally:
        github.app_fault = None
    page.get_by_role("button", name="Try again").click()
    picker = page.get_by_label("GitHub repository")
    expect(picker.locator("option")).to_have_text(
        ["Choose one, or enter a URL below", f"{BOB}/tools"]
    )

    # Picking, then typing a URL by hand: the URL is what is kept, with a free-text branch.
    picker.select_option(f"{BOB}/tools")
    repository = page.get_by_label("Repository", exact=True)
    repository.fill("https://example.com/elsewhere.git")
    expect(picker).to_have_value("")
    expect(page.get_by_label("Default branch")).to_have_value("")
    expect(repository).to_have_value("https://example.com/elsewhere.git")
