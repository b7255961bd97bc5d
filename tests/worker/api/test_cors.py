"""CORS on the API (worker/api/middleware.py `Cors`), through the real edge.

Only the app origin (`http://app.localhost:PORT` here; `https://app.{domain}` in production)
may read the API cross-origin, with credentials; its preflight is answered with the
allowed methods and headers. Any other origin gets no CORS header at all, and its
preflight a JSON 403. Every API answer carries `Vary: Origin`.
"""

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.edge import Edge, running_edge
from worker.api.middleware import CORS_MAX_AGE_SECONDS

CORS_HEADERS = (
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    data_dir: Path = tmp_path_factory.mktemp("cors") / ".sam"
    with running_edge(data_dir) as running:
        yield running


@pytest.fixture(scope="module")
def token(edge: Edge) -> str:
    with edge.client("api") as client:
        session = client.post("/api/auth/dev-login", json={"login": "corsuser"})
        assert session.status_code == 200, session.text
        created = client.post(
            "/api/tokens",
            json={"name": "cors"},
            headers={
                "cookie": f"sam_session={session.cookies['sam_session']}",
                "origin": app_origin(edge),
            },
        )
        assert created.status_code == 201, created.text
        return created.json()["token"]


def app_origin(edge: Edge, scheme: str = "http") -> str:
    return f"{scheme}://{edge.host('app')}"


def preflight(client: httpx.Client, path: str, origin: str, method: str = "POST") -> httpx.Response:
    return client.options(
        path,
        headers={
            "origin": origin,
            "access-control-request-method": method,
            "access-control-request-headers": "authorization, content-type",
        },
    )


def vary(response: httpx.Response) -> list[str]:
    return [
        part.strip().lower()
        for header in response.headers.get_list("vary")
        for part in header.split(",")
    ]


def assert_no_cors(response: httpx.Response) -> None:
    present = [name for name in CORS_HEADERS if name in response.headers]
    assert present == [], f"{response.request.headers.get('origin')} got {present}"
    assert "origin" in vary(response)


def test_the_app_origin_reads_the_api_with_credentials(edge: Edge, token: str) -> None:
    origin = app_origin(edge)
    with edge.client("api") as client:
        me = client.get(
            "/api/auth/me", headers={"origin": origin, "authorization": f"Bearer {token}"}
        )
    assert me.status_code == 200 and me.json()["login"] == "corsuser"
    assert me.headers["access-control-allow-origin"] == origin
    assert me.headers["access-control-allow-credentials"] == "true"
    exposed = {h.strip() for h in me.headers["access-control-expose-headers"].split(",")}
    assert {"retry-after", "x-request-id"} <= exposed
    assert "origin" in vary(me)
    assert len(me.headers.get_list("access-control-allow-origin")) == 1


def test_errors_are_readable_by_the_app_too(edge: Edge) -> None:
    origin = app_origin(edge)
    with edge.client("api") as client:
        for response in (
            client.get("/api/auth/me", headers={"origin": origin}),  # 401
            client.get("/api/no-such-route", headers={"origin": origin}),  # 404
            client.post(
                "/api/tokens", content=b"x" * (2 * 1024 * 1024), headers={"origin": origin}
            ),  # 413, from the body limit
        ):
            assert response.status_code >= 400
            assert response.json()["error"]
            assert response.headers["access-control-allow-origin"] == origin, response.text


def test_the_app_preflight(edge: Edge) -> None:
    origin = app_origin(edge)
    with edge.client("api") as client:
        for path, method in (("/api/tokens", "POST"), ("/api/credentials/c_1", "DELETE")):
            answer = preflight(client, path, origin, method)
            assert answer.status_code == 204, answer.text
            assert answer.content == b""
            assert answer.headers["access-control-allow-origin"] == origin
            assert answer.headers["access-control-allow-credentials"] == "true"
            methods = {m.strip() for m in answer.headers["access-control-allow-methods"].split(",")}
            assert {"GET", "POST", "PUT", "PATCH", "DELETE"} <= methods
            allowed = {h.strip() for h in answer.headers["access-control-allow-headers"].split(",")}
            assert {"authorization", "content-type"} <= allowed
            assert answer.headers["access-control-max-age"] == str(CORS_MAX_AGE_SECONDS)
            assert "origin" in vary(answer)


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "http://app.localhost.evil.example",
        "http://evilapp.localhost:{port}",
        "http://api.localhost:{port}",
        "http://ws-abc123.localhost:{port}",
        "http://app.localhost:1",
        "http://app.localhost:{port}.evil.example",
        "http://APP.localhost:{port}x",
        "",
    ],
)
def test_other_origins_get_no_cors_headers(edge: Edge, token: str, origin: str) -> None:
    origin = origin.format(port=edge.port)
    with edge.client("api") as client:
        read = client.get(
            "/api/auth/me", headers={"origin": origin, "authorization": f"Bearer {token}"}
        )
        # The API still answers (CORS is the browser's to enforce), but says nothing.
        assert read.status_code == 200
        assert_no_cors(read)
        refused = preflight(client, "/api/tokens", origin)
    assert refused.status_code == 403
    assert refused.json()["error"] == "origin_not_allowed"
    assert_no_cors(refused)


def test_a_cookie_write_from_another_origin_is_refused_without_cors(edge: Edge) -> None:
    """CORS hides answers; the CSRF rule still stops the write itself."""
    with edge.client("app") as client:
        session = client.post("/api/auth/dev-login", json={"login": "victim"})
        response = client.post(
            "/api/tokens",
            json={"name": "stolen"},
            headers={
                "origin": "https://evil.example",
                "cookie": f"sam_session={session.cookies['sam_session']}",
            },
        )
    assert response.status_code == 403
    assert response.json()["error"] == "cross_origin_request"
    assert_no_cors(response)


def test_requests_without_origin_are_untouched(edge: Edge) -> None:
    with edge.client("api") as client:
        plain = client.get("/.well-known/jwks.json")
        # OPTIONS that is not a preflight goes to the API, which allows no OPTIONS.
        options = client.options("/api/tokens", headers={"origin": app_origin(edge)})
        not_preflight = client.options(
            "/api/tokens", headers={"access-control-request-method": "POST"}
        )
    assert plain.status_code == 200
    assert_no_cors(plain)
    assert options.status_code == 405 and options.json()["error"] == "method_not_allowed"
    assert not_preflight.status_code == 405
    assert_no_cors(not_preflight)


def test_production_allows_only_the_https_app_origin(tmp_path: Path) -> None:
    with (
        running_edge(tmp_path / ".sam", vars={"SAM_ENVIRONMENT": "production"}) as edge,
        edge.client("api") as client,
    ):
        https = preflight(client, "/api/tokens", app_origin(edge, "https"))
        http = preflight(client, "/api/tokens", app_origin(edge, "http"))
        read = client.get("/.well-known/jwks.json", headers={"origin": app_origin(edge)})
    assert https.status_code == 204
    assert https.headers["access-control-allow-origin"] == app_origin(edge, "https")
    assert http.status_code == 403
    assert_no_cors(http)
    assert_no_cors(read)
