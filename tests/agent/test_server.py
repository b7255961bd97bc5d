"""The agent's HTTP/WS surface, against the real `python -m agent` process: auth on every
route but /health, JSON errors for every failure, key rotation, TLS, graceful shutdown."""

import asyncio
import base64
import datetime
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import httpx
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from agent.errors import Conflict
from agent.server import MAX_CONTROL_BODY_BYTES, error_middleware
from tests.support.agent import AgentProcess
from tests.support.control_plane import ControlPlaneDouble

MISSING = "no-such-workspace"
WS_ROUTES = ["/workspaces/{id}/terminal/ws", "/workspaces/{id}/boot-log/ws"]
HTTP_ROUTES = [
    ("POST", "/workspaces"),
    ("GET", "/workspaces"),
    ("GET", "/workspaces/{id}"),
    ("DELETE", "/workspaces/{id}"),
    ("POST", "/workspaces/{id}/stop"),
    ("POST", "/workspaces/{id}/restart"),
    ("POST", "/workspaces/{id}/rebuild"),
    ("GET", "/workspaces/{id}/boot-log"),
    ("GET", "/workspaces/{id}/terminals"),
]
UPGRADE_HEADERS = {
    "Connection": "Upgrade",
    "Upgrade": "websocket",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": base64.b64encode(os.urandom(16)).decode(),
}
READY_TIMEOUT_SECONDS = 30.0


def assert_json_error(response: httpx.Response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error", "message"} and body["message"], body
    if code is not None:
        assert body["error"] == code, body
    return body


@pytest.fixture
def repository(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    (repo / "README.md").write_text("hello\n")
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    return repo


def create_running(agent: AgentProcess, repository: Path, workspace_id: str = "ws-1") -> dict:
    with agent.client() as client:
        body = {"id": workspace_id, "repository": str(repository)}
        created = client.post("/workspaces", json=body)
        assert created.status_code == 202, created.text
        assert created.json()["id"] == workspace_id
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            workspace = client.get(f"/workspaces/{workspace_id}").json()
            if workspace["state"] in ("running", "error"):
                break
            time.sleep(0.1)
    assert workspace["state"] == "running", workspace
    return workspace


# --- /health and auth on every route --------------------------------------------------


def test_health_needs_no_token(agent: AgentProcess, control_plane: ControlPlaneDouble) -> None:
    response = httpx.get(f"{agent.url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    assert response.json()["node_id"] == control_plane.node_id


def test_every_other_route_needs_a_token(agent: AgentProcess) -> None:
    with agent.client(token="") as client:
        for method, path in HTTP_ROUTES:
            response = client.request(method, path.format(id=MISSING), json={})
            assert_json_error(response, 401, "unauthorized")
        for path in WS_ROUTES:
            response = client.get(path.format(id=MISSING), headers=UPGRADE_HEADERS)
            body = assert_json_error(response, 401, "unauthorized")
            assert "?token=" in body["message"]


def test_a_query_token_is_refused_on_http_routes(agent: AgentProcess, control_plane) -> None:
    with agent.client(token="") as client:
        response = client.get("/workspaces", params={"token": control_plane.agent_token()})
    assert_json_error(response, 401)


def test_bad_tokens_are_refused_on_http_routes(agent: AgentProcess, control_plane) -> None:
    with agent.client(token="") as client:
        assert client.get("/workspaces", headers=agent.auth()).status_code == 200
        for name, case in control_plane.bad_tokens(MISSING, "http").items():
            for path in ("/workspaces", f"/workspaces/{MISSING}"):
                response = client.get(path, headers=agent.auth(case.token))
                assert response.status_code == case.status, (name, path, response.text)
                assert_json_error(response, case.status)


def test_bad_tokens_are_refused_on_websockets_before_the_upgrade(agent, control_plane) -> None:
    with agent.client(token="") as client:
        for name, case in control_plane.bad_tokens(MISSING, "ws").items():
            for route in WS_ROUTES:
                path = route.format(id=MISSING)
                # Both ways a WebSocket may carry its token.
                by_query = client.get(path, params={"token": case.token}, headers=UPGRADE_HEADERS)
                by_header = client.get(path, headers={**UPGRADE_HEADERS, **agent.auth(case.token)})
                for response in (by_query, by_header):
                    assert response.status_code == case.status, (name, path, response.text)
                    assert_json_error(response, case.status)
        # A valid token gets past auth to the workspace lookup.
        ok = client.get(
            WS_ROUTES[0].format(id=MISSING),
            params={"token": control_plane.terminal_token(MISSING)},
            headers=UPGRADE_HEADERS,
        )
        assert_json_error(ok, 404, "workspace_not_found")


def test_a_revoked_grant_closes_nothing_twice_and_its_tokens_are_refused(
    agent: AgentProcess, control_plane
) -> None:
    signed_out, other = "session:" + "a" * 64, "session:" + "b" * 64
    with agent.client(token="") as client:
        revoke = client.post(
            "/grants/revoke",
            json={"grant": signed_out},
            headers=agent.auth(control_plane.agent_token()),
        )
        assert revoke.status_code == 200 and revoke.json() == {"closed": 0}, revoke.text
        for grant, status in ((signed_out, 401), (other, 404)):  # 404: past auth, no workspace
            token = control_plane.terminal_token(MISSING, grant=grant)
            refused = client.get(
                WS_ROUTES[0].format(id=MISSING), params={"token": token}, headers=UPGRADE_HEADERS
            )
            assert refused.status_code == status, refused.text
        assert (
            "signed out"
            in client.get(
                WS_ROUTES[0].format(id=MISSING),
                params={"token": control_plane.terminal_token(MISSING, grant=signed_out)},
                headers=UPGRADE_HEADERS,
            ).json()["message"]
        )
        # Only the control plane may revoke, and only a well-formed grant.
        terminal = control_plane.terminal_token(MISSING, grant=other)
        assert (
            client.post(
                "/grants/revoke", json={"grant": other}, headers=agent.auth(terminal)
            ).status_code
            == 403
        )
        for body in ({"grant": "session:not-hex"}, {"grant": other, "extra": 1}, {}):
            bad = client.post(
                "/grants/revoke", json=body, headers=agent.auth(control_plane.agent_token())
            )
            assert_json_error(bad, 400, "bad_request")


async def test_websocket_client_sees_the_refusal(agent: AgentProcess, control_plane) -> None:
    bad = control_plane.bad_tokens("ws-x", "ws")
    async with aiohttp.ClientSession() as session:
        for name, status in (("expired", 401), ("terminal_wrong_workspace", 403)):
            url = f"{agent.ws_url}/workspaces/ws-x/terminal/ws?token={bad[name].token}"
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(url)
            assert refused.value.status == status


def test_a_rotated_key_is_accepted_without_restart(agent: AgentProcess, control_plane) -> None:
    with agent.client(token="") as client:
        assert client.get("/workspaces", headers=agent.auth()).status_code == 200
        fetches = control_plane.jwks_fetches
        control_plane.rotate(retire_old=True)
        assert client.get("/workspaces", headers=agent.auth()).status_code == 200
        assert control_plane.jwks_fetches == fetches + 1
        # A flood of unknown kids inside the cooldown does not reach the control plane.
        for _ in range(20):
            bogus = control_plane.bad_tokens(MISSING)["unknown_kid"].token
            assert client.get("/workspaces", headers=agent.auth(bogus)).status_code == 401
        assert control_plane.jwks_fetches == fetches + 1
    assert "jwks.fetched reason=unknown_kid" in agent.log()


def test_an_unreachable_jwks_is_503(agent_factory, control_plane) -> None:
    control_plane.jwks_status = 503
    agent = agent_factory(backend="host")
    with agent.client() as client:
        body = assert_json_error(client.get("/workspaces"), 503, "auth_unavailable")
    assert "reachable" in body["message"]


# --- JSON errors --------------------------------------------------------------------------


def test_routing_and_body_errors_are_json(agent: AgentProcess) -> None:
    with agent.client() as client:
        assert_json_error(client.get("/nope"), 404, "not_found")
        body = assert_json_error(client.put("/workspaces"), 405, "method_not_allowed")
        assert "GET" in body["message"] and "POST" in body["message"]
        malformed = client.post(
            "/workspaces", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert_json_error(malformed, 400, "bad_request")
        assert_json_error(client.post("/workspaces", json=[1, 2]), 400, "bad_request")
        unknown = client.post("/workspaces", json={"id": "a", "repository": "/x", "rm": 1})
        assert "rm" in assert_json_error(unknown, 400, "bad_request")["message"]
        invalid = client.post("/workspaces", json={"id": "-x", "repository": "/tmp"})
        assert_json_error(invalid, 400)
        huge = client.post("/workspaces", content=b"x" * (MAX_CONTROL_BODY_BYTES + 1))
        assert_json_error(huge, 413, "payload_too_large")
        assert_json_error(client.get(f"/workspaces/{MISSING}"), 404, "workspace_not_found")
        assert_json_error(client.post(f"/workspaces/{MISSING}/stop"), 404)
        assert_json_error(client.get(f"/workspaces/{MISSING}/terminals"), 404)
    assert "Traceback" not in agent.log()


def test_workspace_routes_end_to_end(agent: AgentProcess, repository: Path) -> None:
    create_running(agent, repository)
    with agent.client() as client:
        assert [w["id"] for w in client.get("/workspaces").json()["workspaces"]] == ["ws-1"]
        again = client.post("/workspaces", json={"id": "ws-1", "repository": str(repository)})
        assert_json_error(again, 409, "workspace_exists")
        assert_json_error(client.post("/workspaces/ws-1/restart"), 409)
        entries = client.get("/workspaces/ws-1/boot-log").json()["entries"]
        assert entries and entries[-1]["status"] == "succeeded"
        assert client.get("/workspaces/ws-1/terminals").json() == {"tabs": []}
        stopped = client.post("/workspaces/ws-1/stop")
        assert (stopped.status_code, stopped.json()["state"]) == (200, "stopped")
        deleted = client.delete("/workspaces/ws-1")
        assert deleted.json() == {"id": "ws-1", "deleted": True}
        assert_json_error(client.get("/workspaces/ws-1"), 404)
    assert "workspace.created id=ws-1" in agent.log()


async def test_terminal_token_opens_the_terminal_socket(agent, control_plane, repository):
    create_running(agent, repository)
    token = control_plane.terminal_token("ws-1")
    async with aiohttp.ClientSession() as session:
        url = f"{agent.ws_url}/workspaces/ws-1/terminal/ws?token={token}"
        async with session.ws_connect(url) as ws:
            assert not ws.closed
        boot_url = f"{agent.ws_url}/workspaces/ws-1/boot-log/ws"
        async with session.ws_connect(boot_url, headers=agent.auth(token)) as ws:
            entries = [message.json() async for message in ws]
            assert entries and entries[-1]["status"] == "succeeded"
            assert ws.close_code == 1000
    # Access lines never carry the query string that held the token.
    assert token not in agent.log()
    assert "http.request method=GET path=/workspaces/ws-1/terminal/ws" in agent.log()


# --- the error boundary for our own bugs --------------------------------------------------


async def test_an_unexpected_exception_is_a_logged_500(caplog) -> None:
    async def crash(request: web.Request) -> web.Response:
        raise RuntimeError("a bug in a handler")

    async def conflict(request: web.Request) -> web.Response:
        raise Conflict("typed errors keep their status")

    app = web.Application(middlewares=[error_middleware])
    app.router.add_get("/crash", crash)
    app.router.add_get("/conflict", conflict)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/crash")
        assert response.status == 500
        assert (await response.json())["error"] == "internal_error"
        assert "a bug" not in await response.text()
        response = await client.get("/conflict")
        assert (response.status, (await response.json())["error"]) == (409, "conflict")
    assert "request.crashed" in caplog.text and "RuntimeError: a bug" in caplog.text


# --- TLS and shutdown ---------------------------------------------------------------------


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def test_tls(agent_factory, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    agent = agent_factory(
        backend="host", extra_env={"SAM_TLS_CERT": str(cert), "SAM_TLS_KEY": str(key)}
    )
    assert agent.url.startswith("https://")
    with httpx.Client(verify=False) as client:
        assert client.get(f"{agent.url}/health").status_code == 200
        assert client.get(f"{agent.url}/workspaces", headers=agent.auth()).status_code == 200
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{agent.port}/health")


def test_a_busy_port_is_a_clear_start_failure(agent: AgentProcess) -> None:
    env = {**agent.env, "SAM_STATE_DIR": str(agent.state_dir.parent / "second")}
    done = subprocess.run(
        [sys.executable, "-m", "agent"], cwd=agent.cwd, env=env, capture_output=True, text=True
    )
    assert done.returncode == 1
    assert "agent.start_failed" in done.stderr and str(agent.port) in done.stderr
    assert "Traceback" not in done.stderr


async def test_sigterm_shuts_down_gracefully(agent: AgentProcess, control_plane, repository):
    create_running(agent, repository)
    token = control_plane.agent_token()
    async with aiohttp.ClientSession() as session:
        url = f"{agent.ws_url}/workspaces/ws-1/terminal/ws?token={token}"
        async with session.ws_connect(url) as ws:
            assert agent.process is not None
            agent.process.send_signal(signal.SIGTERM)
            message = await asyncio.wait_for(ws.receive(), 15)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    code = await asyncio.to_thread(agent.process.wait, 15)
    assert code == 0
    log = agent.log()
    assert "agent.stopped" in log and "Traceback" not in log


# --- what the log keeps of a header -------------------------------------------------------

# aiohttp refuses a header line over 8190 bytes and logs the start of it.
OVER_LONG_PADDING = "x" * 9000
TOKEN_SLICE_CHARS = 16


def test_an_over_long_authorization_header_leaves_no_part_of_its_token_in_the_log(
    agent: AgentProcess, agent_token: str
) -> None:
    for value in (f"Bearer {agent_token}{OVER_LONG_PADDING}", f"Bearer {agent_token}.x.y"):
        with agent.client() as client:
            response = client.get("/workspaces", headers={"Authorization": value})
        assert response.status_code in (400, 401), response.text
    log = agent.log()
    assert "Got more than" in log  # aiohttp's own line was written, without the token
    for start in range(0, len(agent_token) - TOKEN_SLICE_CHARS, TOKEN_SLICE_CHARS // 2):
        assert agent_token[start : start + TOKEN_SLICE_CHARS] not in log
