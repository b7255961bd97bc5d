"""The web app's files carry its security headers (Chromium enforcing them is in
tests/browser/test_security_headers.py)."""

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.edge import Edge, running_edge

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    with running_edge(tmp_path_factory.mktemp("headers") / ".sam") as running:
        yield running


def built_asset() -> str:
    index = (ROOT / "pages" / "dist" / "index.html").read_text()
    found = re.search(r'src="(/assets/[^"]+\.js)"', index)
    assert found, "pages/dist/index.html names no script"
    return found.group(1)


def policy(header: str) -> dict[str, str]:
    return dict(part.strip().split(" ", 1) for part in header.split(";"))


@pytest.mark.parametrize("path", ["/", "/settings", "/favicon.svg", built_asset()])
def test_every_file_of_the_app_carries_the_headers(edge: Edge, path: str) -> None:
    with edge.client("app") as client:
        response = client.get(path)
    assert response.status_code == 200
    csp = policy(response.headers["content-security-policy"])
    assert csp["default-src"] == "'none'"
    assert csp["script-src"] == "'self'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["connect-src"] == f"'self' http://*.{edge.domain} ws://*.{edge.domain}"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"
    assert response.headers["x-frame-options"] == "DENY"


def test_over_https_the_terminal_sockets_are_wss(edge: Edge) -> None:
    with edge.client("app", headers={"x-forwarded-proto": "https"}) as client:
        csp = policy(client.get("/").headers["content-security-policy"])
    assert csp["connect-src"] == f"'self' https://*.{edge.domain} wss://*.{edge.domain}"
