"""Helpers for the browser tests: URLs, sign-in without the UI, and reading xterm's screen."""

import contextlib
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
from playwright.sync_api import BrowserContext, Locator, Page, expect

from tests.fakes.anthropic import ScriptedModel
from tests.support.edge import Edge
from tests.support.wait import wait_for

# Every user the browser tests sign in as (conftest deletes their workspaces at the end).
ALICE = "browser-alice"
BOB = "browser-bob"
CAROL = "browser-carol"
LOGINS = (ALICE, BOB, CAROL)
SESSION_COOKIE = "sam_session"
WORKSPACE_READY_SECONDS = 90.0
# A phone's viewport: no screen may scroll sideways in it.
PHONE = {"width": 375, "height": 740}
# A shell prompt ends in `$ ` (or `# ` for root).
PROMPT = re.compile(r"[$#] ")


def app_url(edge: Edge, path: str = "/") -> str:
    return f"http://{edge.host('app')}{path}"


def submit_new_workspace(page: Page, edge: Edge, repository: str) -> None:
    """The New workspace form, filled in with `repository` and sent."""
    page.goto(app_url(edge, "/workspaces/new"))
    page.get_by_label("Repository").fill(repository)
    page.get_by_role("button", name="Create workspace").click()


def sign_in(context: BrowserContext, edge: Edge, login: str) -> None:
    """A dev sign-in session for `context` (its cookie on the app host), without the UI.

    Made with httpx: Playwright's own request client resolves names with Node, which does
    not send `*.localhost` to loopback as browsers do."""
    with api_client(edge, login) as client:
        session = client.cookies.get(SESSION_COOKIE)
    assert session, "dev sign-in set no session cookie"
    context.add_cookies([{"name": SESSION_COOKIE, "value": session, "url": app_url(edge)}])


@contextmanager
def api_client(edge: Edge, login: str) -> Iterator[httpx.Client]:
    """The API on the app host, signed in as `login`, as the SPA calls it."""
    with edge.client("app") as client:
        client.timeout = httpx.Timeout(60.0)
        client.headers["origin"] = f"http://{edge.host('app')}"
        reply = client.post("/api/auth/dev-login", json={"login": login})
        assert reply.status_code == 200, reply.text
        yield client


def store_model_key(edge: Edge, login: str, model: ScriptedModel, secret: str) -> None:
    """Save `secret` as the user's Anthropic key with the scripted model as its base URL, where
    a user's own gateway would be (Settings → Agent): the edge checks the key there, and the
    node's model proxy forwards there."""
    with api_client(edge, login) as client:
        key = {"kind": "anthropic", "secret": secret, "base_url": model.url}
        stored = client.post("/api/credentials", json=key)
        assert stored.status_code == 201, stored.text


def delete_workspaces(edge: Edge, *logins: str) -> None:
    """Remove what the tests made (containers included) before the edge stops its nodes."""
    for login in logins:
        with api_client(edge, login) as client:
            for workspace in client.get("/api/workspaces").json()["workspaces"]:
                with contextlib.suppress(httpx.HTTPError):
                    client.delete(f"/api/workspaces/{workspace['id']}")


def create_running_workspace(edge: Edge, login: str, repository: str) -> dict[str, Any]:
    """A local workspace made through the API, once it is running."""
    with api_client(edge, login) as client:
        reply = client.post("/api/workspaces", json={"repository": repository, "provider": "local"})
        assert reply.status_code == 202, reply.text
        workspace_id = reply.json()["id"]

        def running() -> dict[str, Any] | None:
            shown = client.get(f"/api/workspaces/{workspace_id}").json()
            assert shown["status"] in ("pending", "creating", "running"), shown
            return shown if shown["status"] == "running" else None

        workspace = wait_for(running, "the workspace to run", WORKSPACE_READY_SECONDS)
    edge.assert_docker_backend(workspace["node_id"])
    return workspace


# --- the terminal on the page ------------------------------------------------------------


def status(page: Page) -> Locator:
    return page.get_by_test_id("connection-status")


def screen(page: Page) -> Locator:
    """The rows of the visible tab's xterm.js screen (the DOM renderer)."""
    return page.locator(".terminal-pane-active .xterm-rows")


def screen_text(page: Page) -> str:
    return screen(page).inner_text().replace("\xa0", " ")


def screen_lines(page: Page) -> list[str]:
    return [line.rstrip() for line in screen_text(page).splitlines()]


def wait_for_prompt(page: Page) -> None:
    expect(status(page)).to_have_text("Connected")
    expect(screen(page)).to_contain_text(PROMPT)


def run(page: Page, command: str) -> None:
    """Type `command` and Enter into the visible terminal, as a user would."""
    page.locator(".terminal-pane-active .xterm-helper-textarea").focus()
    page.keyboard.type(command)
    page.keyboard.press("Enter")


def active_terminal_size(page: Page) -> tuple[int, int]:
    """(rows, cols) of the visible tab's xterm.js terminal."""
    size = page.evaluate(
        """() => {
            const [manager] = globalThis.__samTerminals;
            const active = manager.snapshot().active;
            const { terminal } = manager.screens.get(active);
            return [terminal.rows, terminal.cols];
        }"""
    )
    return size[0], size[1]


def drop_connection(page: Page) -> None:
    """Close the terminal WebSocket as a network failure would; the page reconnects."""
    page.evaluate("() => globalThis.__samTerminals.forEach((manager) => manager.client.drop())")


def wait_for_line(page: Page, pattern: str) -> str:
    """Wait until a whole row of the visible terminal matches the regex `pattern`; return it.

    (Playwright's text assertions read textContent, which runs xterm's rows together.)"""
    handle = page.wait_for_function(
        """([source]) => {
            const pattern = new RegExp(`^(?:${source})$`);
            const rows = document.querySelectorAll(".terminal-pane-active .xterm-rows > div");
            for (const row of rows) {
                const text = row.textContent.replace(/\\u00a0/g, " ").trimEnd();
                if (pattern.test(text)) return text;
            }
            return null;
        }""",
        arg=[pattern],
    )
    return handle.json_value()
