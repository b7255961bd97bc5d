"""Browser tests: Debian's Chromium, driven by Playwright for Python, against the real local
edge (`sam dev`), real local nodes (agent processes) and the real Docker Engine.

`scripts/test` installs Chromium (scripts/chromium) before pytest runs; a missing browser
fails here, it is never skipped. Every test leaves a screenshot in test-artifacts/browser/,
taken when it ends, passed or failed.
"""

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Playwright,
    expect,
    sync_playwright,
)

from tests.browser.support import LOGINS, delete_workspaces
from tests.fakes.anthropic import ScriptedModel
from tests.fakes.hetzner import FakeHetzner
from tests.support.container_tools import model_for_the_adapter
from tests.support.edge import Edge, running_edge

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
CHROMIUM = os.environ.get("SAM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
VIEWPORT = {"width": 1200, "height": 800}
CSP_REPORT = "Content Security Policy"
# Playwright's wait for any one thing; a workspace's first boot is the slowest (~5 s).
EXPECT_TIMEOUT_MS = 30_000
expect.set_options(timeout=EXPECT_TIMEOUT_MS)


# Package scope, not session: Playwright's sync API keeps an asyncio loop running in this
# thread while it is open, and every later test that calls asyncio.run() would fail.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/chromium (scripts/test does) and retry")
    launched = playwright.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
    )
    yield launched
    launched.close()


@pytest.fixture(scope="package")
def hetzner() -> Iterator[FakeHetzner]:
    with FakeHetzner() as fake:
        yield fake


# The one Anthropic key the browser tests' scripted model API accepts.
ANTHROPIC_KEY = "sk-ant-api03-browser-" + "b" * 40 + "Good"


@pytest.fixture(scope="package")
def anthropic() -> Iterator[ScriptedModel]:
    with ScriptedModel(keys={ANTHROPIC_KEY}) as model:
        yield model


@pytest.fixture(scope="module")
def model() -> Iterator[ScriptedModel]:
    """A scripted model API taking any key, for a module whose nodes run the real Claude Code
    adapter (which the container tools hold)."""
    with model_for_the_adapter() as scripted:
        yield scripted


@pytest.fixture(scope="package")
def edge(
    tmp_path_factory: pytest.TempPathFactory, hetzner: FakeHetzner, anthropic: ScriptedModel
) -> Iterator[Edge]:
    data_dir = tmp_path_factory.mktemp("browser") / ".sam"
    # Every test's repositories are under pytest's base directory: any user may use them.
    roots = str(tmp_path_factory.getbasetemp())
    settings = {
        "SAM_HETZNER_API_URL": hetzner.url,
        "SAM_ANTHROPIC_API_URL": anthropic.url,
        "SAM_LOCAL_REPOSITORY_ROOTS": roots,
    }
    with running_edge(data_dir, vars=settings) as running:
        yield running
        delete_workspaces(running, *LOGINS)


@pytest.fixture
def context(browser: Browser, request: pytest.FixtureRequest) -> Iterator[BrowserContext]:
    made = browser.new_context(viewport=VIEWPORT)
    made.set_default_timeout(EXPECT_TIMEOUT_MS)
    yield made
    made.close()


@pytest.fixture
def page(context: BrowserContext, request: pytest.FixtureRequest) -> Iterator[Page]:
    opened = context.new_page()
    problems: list[str] = []
    opened.on("pageerror", lambda error: problems.append(str(error)))
    # Chromium reports what the app's Content-Security-Policy refused on the console.
    opened.on(
        "console",
        lambda message: problems.append(message.text) if CSP_REPORT in message.text else None,
    )
    yield opened
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    name = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name)
    opened.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    assert not problems, f"uncaught errors or CSP violations in the page: {problems}"
