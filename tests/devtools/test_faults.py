"""Our own faults still answer in the JSON error shape, with a request id, logged once."""

from pathlib import Path

from tests.support.edge import ROOT, running_edge

FAULTY = ROOT / "tests" / "fixtures" / "faulty_worker"


def test_a_crash_inside_the_api_is_a_json_500_logged_once(tmp_path: Path) -> None:
    with running_edge(tmp_path / ".sam", FAULTY / "missing_schema.toml") as edge:
        with edge.client() as client:
            response = client.post(
                "/api/errors",
                json={"source": "browser", "message": "x"},
                headers={"x-request-id": "crash-test-1"},
            )
        assert response.status_code == 500
        assert response.json()["error"] == "internal_error"
        assert "x-request-id" in response.json()["message"]
        assert response.headers["x-request-id"] == "crash-test-1"
        log = edge.log()
    assert log.count("request.crashed") == 1
    assert log.count("D1Error: D1_ERROR: no such table: errors") == 1
    assert "crash-test-1" in log


def test_a_misconfigured_deployment_answers_json_500_everywhere(tmp_path: Path) -> None:
    with running_edge(tmp_path / ".sam", FAULTY / "bad_vars.toml", healthy=False) as edge:
        for host in ("api", "app", "ws-abc"):
            with edge.client(host) as client:
                response = client.get("/health")
            assert response.status_code == 500
            assert response.json()["error"] == "internal_error"
            assert response.headers["x-request-id"]
        log = edge.log()
    assert "SAM_MAX_BODY_BYTES must be a number of bytes, not 'lots'" in log
