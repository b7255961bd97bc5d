"""Bad input always gets a JSON error with the right status, never a 500."""

from tests.support.edge import Edge


def _is_error(response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error"] == code
    assert isinstance(body["message"], str) and body["message"]


def test_malformed_json_is_400(edge: Edge) -> None:
    with edge.client() as client:
        response = client.post(
            "/api/errors",
            content=b'{"source": "browser", "message": ',
            headers={"content-type": "application/json"},
        )
    _is_error(response, 400, "malformed_json")


def test_invalid_fields_are_400_and_name_the_field(edge: Edge) -> None:
    with edge.client() as client:
        response = client.post("/api/errors", json={"source": "martian", "message": ""})
    _is_error(response, 400, "invalid_request")
    assert "source" in response.json()["message"]
    assert "message" in response.json()["message"]


def test_body_over_the_limit_is_413(edge: Edge) -> None:
    with edge.client() as client:
        response = client.post(
            "/api/errors",
            content=b"x" * (1024 * 1024 + 1),
            headers={"content-type": "application/json"},
        )
    _is_error(response, 413, "payload_too_large")


def test_chunked_body_over_the_limit_is_413(edge: Edge) -> None:
    def chunks():
        for _ in range(17):
            yield b"y" * 65536

    with edge.client() as client:
        response = client.post(
            "/api/errors", content=chunks(), headers={"content-type": "application/json"}
        )
    _is_error(response, 413, "payload_too_large")


def test_unknown_route_is_404(edge: Edge) -> None:
    with edge.client() as client:
        response = client.get("/api/does-not-exist")
    _is_error(response, 404, "not_found")


def test_wrong_method_is_405(edge: Edge) -> None:
    with edge.client() as client:
        response = client.delete("/health")
    _is_error(response, 405, "method_not_allowed")


def test_injection_attempt_is_stored_as_text(edge: Edge) -> None:
    hostile = "'); DROP TABLE errors; --"
    with edge.client() as client:
        first = client.post("/api/errors", json={"source": "browser", "message": hostile})
        second = client.post("/api/errors", json={"source": "agent", "message": "still here"})
    assert first.status_code == 202
    assert second.status_code == 202
    assert second.json()["id"] == first.json()["id"] + 1


def test_error_report_lands_in_the_observability_database(edge: Edge) -> None:
    import sqlite3

    with edge.client() as client:
        response = client.post(
            "/api/errors",
            json={"source": "browser", "message": "boom", "detail": "stack"},
            headers={"x-request-id": "report-0001"},
        )
    assert response.status_code == 202
    with sqlite3.connect(edge.data_dir / "d1" / "sam-observability.sqlite") as db:
        row = db.execute(
            "SELECT source, message, detail, request_id FROM errors WHERE id = ?",
            (response.json()["id"],),
        ).fetchone()
    assert row == ("browser", "boom", "stack", "report-0001")
