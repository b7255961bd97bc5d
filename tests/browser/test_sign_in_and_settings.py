"""Sign-in, the shell, settings and narrow screens, in a real browser against the real edge."""

import re

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import ANTHROPIC_KEY
from tests.browser.support import ALICE, BOB, PHONE, app_url, sign_in
from tests.fakes.anthropic import ScriptedModel
from tests.fakes.hetzner import FakeHetzner
from tests.support.edge import Edge


def test_dev_sign_in_then_a_bad_hetzner_token_shows_the_apis_message(
    page: Page, edge: Edge, hetzner: FakeHetzner
) -> None:
    page.goto(app_url(edge, "/settings"))
    expect(page.get_by_role("heading", name="Sign in to SAM")).to_be_visible()
    page.get_by_label("User name").fill(ALICE)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_test_id("signed-in-user")).to_have_text(ALICE)
    # Signed in where the browser was going.
    expect(page.get_by_role("heading", name="Settings")).to_be_visible()

    page.get_by_label("Hetzner Cloud API token").fill("not-a-real-token")
    page.get_by_role("button", name="Save credential").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("Hetzner Cloud rejected this API token (401)")
    expect(alert).to_contain_text("invalid_credential")
    expect(page.get_by_test_id("credential")).to_have_count(0)

    token = hetzner.add_token()
    page.get_by_label("Hetzner Cloud API token").fill(token)
    page.get_by_label("Label").fill("personal")
    page.get_by_role("button", name="Save credential").click()
    credential = page.get_by_test_id("credential")
    expect(credential).to_contain_text("Hetzner Cloud API token · personal")
    expect(credential).to_contain_text("…" + token[-4:])
    expect(alert).to_have_count(0)
    assert token not in page.content()

    credential.get_by_role("button", name="Delete").click()
    page.get_by_role("button", name="Delete Hetzner Cloud API token").click()
    expect(page.get_by_test_id("credential")).to_have_count(0)


def test_sign_in_by_keyboard_only_and_sign_out(page: Page, edge: Edge) -> None:
    page.goto(app_url(edge))
    expect(page.get_by_role("heading", name="Sign in to SAM")).to_be_visible()
    # No GitHub app under `sam dev` here: the sign-in that works comes first, once the
    # page has heard what this deployment offers (a user tabs once they see the form).
    expect(page.get_by_label("User name")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_label("User name")).to_be_focused()
    page.keyboard.type(BOB)
    page.keyboard.press("Enter")
    expect(page.get_by_test_id("signed-in-user")).to_have_text(BOB)
    # The first Tab on a signed-in page reaches the skip link.
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in to SAM")).to_be_visible()
    page.reload()
    expect(page.get_by_role("heading", name="Sign in to SAM")).to_be_visible()


def test_github_sign_in_without_a_github_app_says_what_to_configure(page: Page, edge: Edge) -> None:
    page.goto(app_url(edge))
    page.get_by_role("button", name="Sign in with GitHub").click()
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("GitHub sign-in is not configured")
    expect(alert).to_contain_text("SAM_GITHUB_CLIENT_ID")


def test_a_bad_dev_login_name_is_explained(page: Page, edge: Edge) -> None:
    page.goto(app_url(edge))
    page.get_by_label("User name").fill("not a name!")
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.get_by_role("alert")).to_contain_text("letters, digits or hyphens")
    expect(page.get_by_label("User name")).to_have_attribute("aria-invalid", "true")


def test_every_screen_fits_a_phone(context: BrowserContext, page: Page, edge: Edge) -> None:
    sign_in(context, edge, ALICE)
    page.set_viewport_size(PHONE)
    for path, heading in [
        ("/", "Projects"),
        ("/projects/new", "New project"),
        ("/workspaces", "Workspaces"),
        ("/workspaces/new", "New workspace"),
        ("/nodes", "Nodes"),
        ("/settings", "Settings"),
        ("/no/such/page", "Nothing here"),
    ]:
        page.goto(app_url(edge, path))
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} scrolls sideways at 375 px ({width} px wide)"
    expect(page).to_have_title(re.compile(r"SAM"))


def test_the_agent_key_is_checked_with_anthropic_before_it_is_saved(
    context: BrowserContext, page: Page, edge: Edge, anthropic: ScriptedModel
) -> None:
    sign_in(context, edge, "browser-agent-key")
    page.goto(app_url(edge, "/settings?kind=anthropic"))
    agent = page.locator("#agent")
    expect(agent.get_by_role("heading", name="Agent")).to_be_visible()
    key_field = agent.get_by_label("Anthropic key")
    expect(key_field).to_be_focused()  # the onboarding's "Add an agent key" lands here

    # A key Anthropic refuses: its message, and nothing stored.
    refused = "sk-ant-api03-browser-" + "r" * 40 + "Nope"
    key_field.fill(refused)
    agent.get_by_role("button", name="Check and save the key").click()
    alert = agent.get_by_role("alert")
    expect(alert).to_contain_text("rejected this key (401)")
    expect(alert).to_contain_text("invalid_credential")
    expect(page.get_by_test_id("credential")).to_have_count(0)
    assert anthropic.seen_keys[-1] == refused

    # A base URL that is not https is refused before anything is called.
    calls = len(anthropic.seen_keys)
    key_field.fill(ANTHROPIC_KEY)
    agent.get_by_label("Gateway base URL").fill("ftp://gateway.example.com")
    agent.get_by_role("button", name="Check and save the key").click()
    expect(alert).to_contain_text("must be an https:// URL")
    assert len(anthropic.seen_keys) == calls

    # The good key, straight to Anthropic: stored, shown as a hint only.
    agent.get_by_label("Gateway base URL").fill("")
    key_field.fill(ANTHROPIC_KEY)
    agent.get_by_role("button", name="Check and save the key").click()
    saved = page.get_by_test_id("agent-key")
    expect(saved).to_contain_text("…Good")
    expect(saved).to_contain_text("straight to Anthropic")
    expect(agent.get_by_role("status")).to_contain_text("Saved (…Good)")
    assert anthropic.seen_keys[-1] == ANTHROPIC_KEY
    assert ANTHROPIC_KEY not in page.content()

    saved.get_by_role("button", name="Remove").click()
    page.get_by_role("button", name="Remove the Anthropic key").click()
    expect(agent.get_by_label("Anthropic key")).to_be_visible()
    expect(page.get_by_test_id("agent-key")).to_have_count(0)
