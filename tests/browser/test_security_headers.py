"""The app's Content-Security-Policy as Chromium enforces it: the SPA runs under it with no
violation (the `page` fixture fails a test on any), and what it does not allow is refused."""

from playwright.sync_api import BrowserContext, Page, expect

from tests.browser.conftest import CSP_REPORT
from tests.browser.support import app_url
from tests.support.edge import Edge

INJECT_INLINE_SCRIPT = """() => {
    const script = document.createElement('script');
    script.textContent = 'window.injected = true';
    document.head.append(script);
}"""


def test_the_app_loads_under_its_policy(page: Page, edge: Edge) -> None:
    page.goto(app_url(edge))
    expect(page.get_by_role("heading", name="Sign in to SAM")).to_be_visible()


def test_an_injected_inline_script_is_refused_and_reported(
    context: BrowserContext, edge: Edge
) -> None:
    page = context.new_page()
    reports: list[str] = []
    page.on("console", lambda m: reports.append(m.text) if CSP_REPORT in m.text else None)
    try:
        page.goto(app_url(edge))
        expect(page.get_by_role("heading", name="Sign in to SAM")).to_be_visible()
        page.evaluate(INJECT_INLINE_SCRIPT)
        assert page.evaluate("() => window.injected") is None
        page.wait_for_timeout(200)
        assert any("script-src" in report for report in reports), reports
    finally:
        page.close()
