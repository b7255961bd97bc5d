"""Every host pattern of the router, through the real local edge process."""

import httpx
import pytest

from tests.support.edge import Edge


def test_api_host_health(edge: Edge) -> None:
    with edge.client("api") as client:
        response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert len(response.headers["x-request-id"]) >= 8


def test_app_host_serves_the_page(edge: Edge) -> None:
    with edge.client("app") as client:
        response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "<title>SAM</title>" in response.text
    assert response.headers["x-request-id"]


def test_app_host_client_side_route_falls_back_to_the_page(edge: Edge) -> None:
    with edge.client("app") as client:
        response = client.get("/workspaces/123")
    assert response.status_code == 200
    assert "<title>SAM</title>" in response.text


def test_app_host_sends_api_paths_to_the_api(edge: Edge) -> None:
    with edge.client("app") as client:
        health = client.get("/api/health")
        missing = client.get("/api/nothing-here")
    assert health.json()["status"] == "ok"
    assert missing.status_code == 404
    assert missing.json()["error"] == "not_found"


def test_app_host_cannot_escape_the_assets_directory(edge: Edge) -> None:
    with edge.client("app") as client:
        response = client.get("/%2e%2e/%2e%2e/wrangler.toml")
    assert "compatibility_date" not in response.text


def test_workspace_host_without_a_credential_is_a_clear_401(edge: Edge) -> None:
    # The ws-{id} proxy (worker/edge/proxy.py; tests/worker/edge/test_proxy.py) authenticates before
    # it looks anything up, so an anonymous caller learns nothing about which ids exist.
    with edge.client("ws-abc123") as client:
        response = client.get("/")
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert "POST /api/terminal/token" in response.json()["message"]


@pytest.mark.parametrize(
    "host", ["localhost", "evil.example.com", "ws-.localhost", "x.api.localhost"]
)
def test_unknown_hosts_are_404(edge: Edge, host: str) -> None:
    full = host if "example" in host else f"{host}:{edge.port}"
    with httpx.Client(base_url=f"http://127.0.0.1:{edge.port}", headers={"host": full}) as client:
        response = client.get("/health")
    assert response.status_code == 404
    assert response.json()["error"] == "unknown_host"
    assert response.headers["x-request-id"]


def test_request_id_is_kept_when_offered_and_logged(edge: Edge) -> None:
    with edge.client("api") as client:
        response = client.get("/health", headers={"x-request-id": "trace-1234567"})
    assert response.headers["x-request-id"] == "trace-1234567"
    assert "trace-1234567" in edge.log()


def test_tokens_in_urls_never_reach_the_log(edge: Edge) -> None:
    with edge.client("api") as client:
        client.get("/api/nothing", params={"token": "query-secret-1234"})
        client.post("/api/bootstrap/path-secret-5678")
    log = edge.log()
    assert "query-secret-1234" not in log
    assert "path-secret-5678" not in log
    assert "/api/bootstrap/<redacted>" in log
