"""A newcomer's first hour, in a real browser (issue 15): what to do after a failed
postCreateCommand (Rebuild), terminals after `scripts/dev` is restarted, a way out of the
terminal by keyboard, options the deployment cannot serve, long names on a phone, a stop
in another tab, and the sign-in this deployment really offers."""

import json
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import EXPECT_TIMEOUT_MS, VIEWPORT
from tests.browser.support import (
    ALICE,
    CAROL,
    PHONE,
    api_client,
    app_url,
    create_running_workspace,
    run,
    screen,
    sign_in,
    status,
    wait_for_prompt,
)
from tests.fixtures.repos import git, make_repo
from tests.support.edge import Edge, running_edge
from tests.worker.workspaces.test_workspaces_api import BASE_IMAGE, kill_agents

XTERM_INPUT = ".terminal-pane-active .xterm-helper-textarea"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("first-hour"), "first-hour")


def open_workspace(page: Page, edge: Edge, workspace: dict[str, Any]) -> None:
    page.goto(app_url(edge, f"/workspaces/{workspace['id']}"))
    wait_for_prompt(page)


def test_a_failed_post_create_offers_rebuild_which_takes_the_fix(
    context: BrowserContext, page: Page, edge: Edge, tmp_path: Path
) -> None:
    broken = {"image": BASE_IMAGE, "postCreateCommand": "echo cannot set up >&2; exit 3"}
    repo = make_repo(tmp_path, "sets-up-badly", devcontainer=broken)
    sign_in(context, edge, CAROL)
    page.goto(app_url(edge, "/workspaces/new"))
    # The form is settled once the deployment has said what it offers.
    expect(page.get_by_role("radio", name="Hetzner Cloud")).to_be_disabled()
    page.get_by_label("Repository").fill(str(repo))
    page.get_by_role("button", name="Create workspace").click()
    expect(page.get_by_role("heading", name="The workspace failed")).to_be_visible()
    expect(page.get_by_role("alert")).to_contain_text("postCreateCommand")
    expect(page.get_by_role("button", name="Start", exact=True)).to_have_count(0)

    fixed = {"image": BASE_IMAGE, "postCreateCommand": "echo fixed > set-up-ran"}
    (repo / ".devcontainer" / "devcontainer.json").write_text(json.dumps(fixed))
    git(repo, "commit", "--quiet", "--all", "--message", "fix the set-up")
    page.get_by_role("button", name="Rebuild workspace").click()
    wait_for_prompt(page)
    run(page, "cat set-up-ran")
    expect(screen(page)).to_contain_text("fixed")


def test_after_a_restart_a_gone_shell_says_so_with_one_button(
    browser: Browser, tmp_path: Path, repo: Path
) -> None:
    data_dir = tmp_path / ".sam"
    settings = {"SAM_LOCAL_REPOSITORY_ROOTS": str(repo.parent)}
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(EXPECT_TIMEOUT_MS)
    try:
        with running_edge(data_dir, vars=settings) as edge:
            workspace = create_running_workspace(edge, ALICE, str(repo))
            sign_in(context, edge, ALICE)
            page = context.new_page()
            open_workspace(page, edge, workspace)
            port = edge.port
        # Ctrl-C, then `scripts/dev` again on the same port: the page stays open.
        with running_edge(data_dir, port=port, vars=settings):
            ended = "This shell has ended (SAM or the workspace restarted)."
            expect(page.get_by_text(ended)).to_be_visible()
            expect(status(page)).to_have_text("Connected")
            run(page, "echo typed-into-a-gone-shell")  # must not surface a protocol error
            expect(page.get_by_role("alert")).to_have_count(0)
            page.get_by_role("button", name="Open a new shell").click()
            wait_for_prompt(page)
            run(page, "echo back-$((6*7))")
            expect(screen(page)).to_contain_text("back-42")
            with api_client(edge, ALICE) as client:
                client.delete(f"/api/workspaces/{workspace['id']}")
    finally:
        context.close()
        kill_agents(data_dir)


def test_esc_then_tab_leaves_the_terminal_and_tab_alone_stays_in_it(
    context: BrowserContext, page: Page, edge: Edge, repo: Path
) -> None:
    workspace = create_running_workspace(edge, CAROL, str(repo))
    sign_in(context, edge, CAROL)
    open_workspace(page, edge, workspace)
    expect(page.get_by_test_id("terminal-keys")).to_contain_text("Esc then Tab leaves the terminal")
    terminal_focused = f"() => document.activeElement?.matches('{XTERM_INPUT}') ?? false"
    page.locator(XTERM_INPUT).focus()
    page.keyboard.press("Tab")  # completion for the shell: focus stays
    assert page.evaluate(terminal_focused)
    page.keyboard.press("Escape")
    page.keyboard.press("Tab")
    assert not page.evaluate(terminal_focused), "Esc then Tab moved the focus on"
    page.keyboard.press("Shift+Tab")
    assert page.evaluate(terminal_focused), "Shift+Tab comes back"
    page.keyboard.press("Escape")
    page.keyboard.press("Shift+Tab")
    assert not page.evaluate(terminal_focused), "Esc then Shift+Tab moved the focus back"


def test_hetzner_without_dns_settings_is_disabled_with_the_reason(
    context: BrowserContext, page: Page, edge: Edge
) -> None:
    sign_in(context, edge, CAROL)
    page.goto(app_url(edge, "/workspaces/new"))
    hetzner = page.get_by_role("radio", name="Hetzner Cloud")
    expect(hetzner).to_be_disabled()
    expect(page.get_by_text("Not available here:")).to_contain_text("no Cloudflare settings")
    expect(page.get_by_role("radio", name="Local node")).to_be_checked()


def test_a_name_over_64_characters_is_refused_not_cut(
    context: BrowserContext, page: Page, edge: Edge, repo: Path
) -> None:
    sign_in(context, edge, CAROL)
    page.goto(app_url(edge, "/workspaces/new"))
    page.get_by_label("Repository").fill(str(repo))
    page.get_by_label("Name (optional)").fill("n" * 70)
    expect(page.get_by_text("70 of at most 64 characters")).to_be_visible()
    page.get_by_role("button", name="Create workspace").click()
    expect(page.get_by_role("alert")).to_contain_text("70 characters long; use at most 64")
    expect(page).to_have_url(app_url(edge, "/workspaces/new"))


def test_a_long_name_wraps_on_a_phone(context: BrowserContext, page: Page, edge: Edge) -> None:
    with api_client(edge, CAROL) as client:
        made = client.post(
            "/api/workspaces",
            json={
                "repository": "http://127.0.0.1:9/" + "a-very-long-repository-name-" * 3 + ".git",
                "provider": "local",
                "name": "W" * 64,
            },
        )
        assert made.status_code == 202, made.text
    sign_in(context, edge, CAROL)
    page.set_viewport_size(PHONE)
    for path in ("/workspaces", f"/workspaces/{made.json()['id']}"):
        page.goto(app_url(edge, path))
        expect(page.get_by_text("W" * 64).first).to_be_visible()
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= PHONE["width"], f"{path} scrolls sideways at 375 px ({width} px wide)"


def test_a_stop_in_another_tab_shows_at_once_in_plain_words(
    context: BrowserContext, edge: Edge, repo: Path
) -> None:
    workspace = create_running_workspace(edge, CAROL, str(repo))
    sign_in(context, edge, CAROL)
    watching = context.new_page()
    # Its clock never moves: no poll can tell this page; only the ended shell can.
    watching.clock.install()
    open_workspace(watching, edge, workspace)
    stopping = context.new_page()
    open_workspace(stopping, edge, workspace)
    stopping.get_by_role("button", name="Stop", exact=True).click()
    expect(watching.get_by_role("heading", name="This workspace is stopped")).to_be_visible()
    assert "signal" not in watching.locator("body").inner_text()


def test_without_a_github_app_the_dev_sign_in_comes_first(page: Page, edge: Edge) -> None:
    page.goto(app_url(edge))
    expect(page.get_by_text("GitHub sign-in is not configured on this deployment.")).to_be_visible()
    buttons = page.get_by_role("button").all_inner_texts()
    first_sign_in = next(text for text in buttons if "Sign in" in text)
    assert first_sign_in.strip() == "Sign in", buttons
