"""`Default.fetch` under real Pyodide: the edge's surfaces, FastAPI through the SDK's ASGI
adapter, and D1 through workerd's implementation."""

import hashlib

import pytest

from tests.pyodide.harness import HttpResponse, PyodideWorker
from wire.version import VERSION

API = "https://api.example.com"
APP = "https://app.example.com"


def assert_stamped(response: HttpResponse) -> None:
    # Every answer passes through with_headers, which needs the SDK's Response on Cloudflare.
    assert response.headers.get("x-request-id"), response.headers


@pytest.mark.parametrize("url", [f"{API}/health", f"{APP}/api/health"])
def test_health(pyodide_worker: PyodideWorker, url: str) -> None:
    response = pyodide_worker.fetch(url)

    assert response.status == 200
    assert response.json() == {"status": "ok", "version": VERSION}
    assert_stamped(response)


def test_an_unknown_host_is_404(pyodide_worker: PyodideWorker) -> None:
    response = pyodide_worker.fetch("https://elsewhere.example.org/")

    assert response.status == 404
    assert response.json()["error"] == "unknown_host"


@pytest.mark.parametrize("path", ["/", "/workspaces/ws-1"])
def test_the_app_host_serves_the_single_page_app(pyodide_worker: PyodideWorker, path: str) -> None:
    response = pyodide_worker.fetch(f"{APP}{path}")

    assert response.status == 200
    assert b"<!doctype html>" in response.body.lower()
    assert_stamped(response)


@pytest.mark.parametrize("url", [f"{API}/api/auth/me", f"{APP}/api/nodes"])
def test_the_api_refuses_an_anonymous_caller(pyodide_worker: PyodideWorker, url: str) -> None:
    response = pyodide_worker.fetch(url)

    assert response.status == 401
    body = response.json()
    assert body["error"] == "unauthorized"
    assert "https://app.example.com/" in body["message"]
    assert_stamped(response)


def test_the_api_answers_a_token_holder_from_d1(pyodide_worker: PyodideWorker) -> None:
    token = "sam_pat_pyodide-harness"
    pyodide_worker.d1("DATABASE", "INSERT INTO users (id, login) VALUES ('usr_py', 'ada')")
    pyodide_worker.d1(
        "DATABASE",
        "INSERT INTO api_tokens (id, user_id, name, token_hash) "
        "VALUES ('tok_py', 'usr_py', 'x', ?)",
        hashlib.sha256(token.encode()).hexdigest(),
    )

    response = pyodide_worker.fetch(
        f"{API}/api/nodes", headers={"authorization": f"Bearer {token}"}
    )

    assert response.status == 200, response.body
    assert_stamped(response)


def test_a_workspace_host_needs_a_terminal_token(pyodide_worker: PyodideWorker) -> None:
    response = pyodide_worker.fetch("https://ws-abc.example.com/")

    assert response.status == 401
    assert response.json()["error"] == "unauthorized"
