"""Workspaces in a real browser: create one on a local node, follow its boot log, and use
its terminals (tabs, reconnect, reload, resize, stop and start) against the real agent and
Docker Engine."""

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.support import (
    BOB,
    CAROL,
    active_terminal_size,
    app_url,
    create_running_workspace,
    drop_connection,
    run,
    screen,
    screen_lines,
    screen_text,
    sign_in,
    status,
    submit_new_workspace,
    wait_for_line,
    wait_for_prompt,
)
from tests.fixtures.repos import make_repo
from tests.support.edge import Edge


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_repo(tmp_path_factory.mktemp("repos"), "browser-demo")


@pytest.fixture(scope="module")
def running_workspace(edge: Edge, repo: Path) -> Iterator[dict[str, Any]]:
    """Bob's workspace, made through the API, shared by the terminal tests."""
    yield create_running_workspace(edge, BOB, str(repo))


@pytest.fixture
def bob(context: BrowserContext, edge: Edge) -> BrowserContext:
    sign_in(context, edge, BOB)
    return context


def open_workspace(page: Page, edge: Edge, workspace: dict[str, Any]) -> None:
    page.goto(app_url(edge, f"/workspaces/{workspace['id']}"))
    expect(page.get_by_role("heading", name=workspace["name"])).to_be_visible()
    wait_for_prompt(page)


def test_new_workspace_shows_its_boot_log_then_a_terminal_that_runs_a_command(
    context: BrowserContext, page: Page, edge: Edge, repo: Path
) -> None:
    sign_in(context, edge, CAROL)
    page.goto(app_url(edge, "/workspaces"))
    page.get_by_role("link", name="New workspace").first.click()
    page.get_by_label("Repository").fill(str(repo))
    page.get_by_label("Local node").check()
    page.get_by_role("button", name="Create workspace").click()

    expect(page).to_have_url(re.compile(r"/workspaces/w[0-9a-f]{32}$"))
    boot_log = page.get_by_test_id("boot-log")
    expect(boot_log).to_contain_text("Workspace requested.")
    expect(page.get_by_role("heading", name="Creating the workspace")).to_be_visible()

    tab = page.get_by_test_id("terminal-tab")
    expect(tab).to_have_count(1)
    wait_for_prompt(page)
    run(page, "echo $((6*7))")
    wait_for_line(page, "42")
    expect(page.get_by_text("running", exact=True)).to_be_visible()
    # The boot log stays one click away once the workspace runs.
    page.get_by_text("Boot log", exact=True).click()
    expect(boot_log).to_contain_text("Workspace requested.")


def test_tabs_have_their_own_shells_and_come_back_after_a_reload(
    bob: BrowserContext, page: Page, edge: Edge, running_workspace: dict[str, Any]
) -> None:
    open_workspace(page, edge, running_workspace)
    tabs = page.get_by_test_id("terminal-tab")
    before = tabs.count()
    run(page, "echo first-$((1+1))")
    expect(screen(page)).to_contain_text("first-2")

    page.get_by_test_id("new-terminal").click()
    expect(tabs).to_have_count(before + 1)
    expect(tabs.last).to_have_attribute("aria-selected", "true")
    wait_for_prompt(page)
    run(page, "export SAM_PROBE=tab-two; echo probe=[$SAM_PROBE]")
    expect(screen(page)).to_contain_text("probe=[tab-two]")

    tabs.nth(before - 1).click()
    run(page, "echo other=[$SAM_PROBE]")
    expect(screen(page)).to_contain_text("other=[]")

    page.reload()
    expect(tabs).to_have_count(before + 1)
    wait_for_prompt(page)
    # The tab that was active is active again, its output replayed from the agent's ring.
    expect(tabs.nth(before - 1)).to_have_attribute("aria-selected", "true")
    expect(screen(page)).to_contain_text("other=[]")
    tabs.last.click()
    expect(screen(page)).to_contain_text("probe=[tab-two]")


def test_a_dropped_connection_resumes_from_its_offset_without_loss_or_repeats(
    bob: BrowserContext, page: Page, edge: Edge, running_workspace: dict[str, Any]
) -> None:
    open_workspace(page, edge, running_workspace)
    run(page, "clear; echo before-$((2*3))")
    expect(screen(page)).to_contain_text("before-6")
    # Output the shell writes while the socket is down must arrive after the reconnect.
    run(page, "sleep 1; echo during-$((3*3))")
    drop_connection(page)
    expect(status(page)).to_contain_text("Reconnecting")
    expect(status(page)).to_have_text("Connected")
    expect(screen(page)).to_contain_text("during-9")
    lines = screen_lines(page)
    assert lines.count("before-6") == 1, screen_text(page)
    assert lines.count("during-9") == 1, screen_text(page)
    assert sum("echo during-" in line for line in lines) == 1, screen_text(page)
    # And the connection is fully back: typing works.
    run(page, "echo after-$((4*4))")
    expect(screen(page)).to_contain_text("after-16")


def test_the_terminal_follows_the_window_size(
    bob: BrowserContext, page: Page, edge: Edge, running_workspace: dict[str, Any]
) -> None:
    open_workspace(page, edge, running_workspace)
    for viewport in ({"width": 1300, "height": 900}, {"width": 375, "height": 700}):
        page.set_viewport_size(viewport)
        page.wait_for_function(
            """([width]) => {
                const [manager] = globalThis.__samTerminals;
                const { terminal } = manager.screens.get(manager.snapshot().active);
                return window.innerWidth === width && terminal.cols > 0;
            }""",
            arg=[viewport["width"]],
        )
        page.wait_for_timeout(200)  # the resize frame's round trip
        rows, cols = active_terminal_size(page)
        run(page, "clear; stty size")
        wait_for_line(page, f"{rows} {cols}")
    assert cols < 60  # the phone width really is narrower


def test_a_stopped_workspace_says_so_and_starts_again(
    context: BrowserContext, page: Page, edge: Edge, repo: Path
) -> None:
    workspace = create_running_workspace(edge, CAROL, str(repo))
    sign_in(context, edge, CAROL)
    open_workspace(page, edge, workspace)
    page.get_by_role("button", name="Stop", exact=True).click()
    expect(page.get_by_role("heading", name="This workspace is stopped")).to_be_visible()
    expect(page.get_by_test_id("terminal-tab")).to_have_count(0)

    page.get_by_role("button", name="Start workspace").click()
    wait_for_prompt(page)
    run(page, "echo again-$((5*5))")
    expect(screen(page)).to_contain_text("again-25")


def test_a_malformed_repository_is_refused_with_the_apis_message(
    bob: BrowserContext, page: Page, edge: Edge
) -> None:
    submit_new_workspace(page, edge, "not a repository; rm -rf /")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("invalid_workspace_spec")
    expect(page).to_have_url(re.compile(r"/workspaces/new$"))


def test_a_missing_local_path_is_refused_before_anything_is_made(
    bob: BrowserContext, page: Page, edge: Edge, tmp_path: Path
) -> None:
    submit_new_workspace(page, edge, str(tmp_path / "no-such-repository"))
    alert = page.get_by_role("alert")
    # The operator (whoever signed in first) and any other user get the same refusal for
    # a missing path as for any other unusable one; only the roots it names differ.
    expect(alert).to_contain_text("no-such-repository is not a git repository")
    expect(page).to_have_url(re.compile(r"/workspaces/new$"))


def test_a_repository_that_cannot_be_cloned_says_git_s_reason_once(
    bob: BrowserContext, page: Page, edge: Edge
) -> None:
    submit_new_workspace(page, edge, "http://127.0.0.1:9/nothing-listens-here.git")
    expect(page.get_by_role("heading", name="The workspace failed")).to_be_visible()
    summary = page.get_by_role("alert")
    expect(summary).to_contain_text("git clone failed: fatal: unable to access")
    said = summary.inner_text().split("git clone failed: ", 1)[1].split(".")[0]
    assert page.locator("body").inner_text().count(said) == 1, "git's reason is shown once"
    # The boot log is one click away; every way on is offered: rebuild, or delete.
    page.get_by_text("Boot log", exact=True).click()
    expect(page.locator(".boot-failed").first).to_be_visible()
    expect(page.get_by_role("button", name="Rebuild workspace")).to_be_visible()
    page.get_by_role("button", name="Delete", exact=True).click()
    page.get_by_role("button", name="Delete workspace").click()
    expect(page).to_have_url(app_url(edge, "/workspaces"))
