"""The agent serves TLS when given a certificate and key (SAM_TLS_CERT, SAM_TLS_KEY): a
client that trusts the issuing CA gets answers for the certified name, one that trusts
another CA is refused, plain HTTP to the port gets no HTTP answer, and a key that others
may read, or a key that is not the certificate's, stops the agent before it serves."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from devtools.local_ca import LocalCa, TlsFiles
from tests.support.agent import ROOT, AgentProcess, agent_environ, free_port
from tests.support.agent_tls import verified_client

NAME = "vm-n1.localhost"
CANARY = "canary-token-" + "7" * 24


@pytest.fixture
def ca(tmp_path: Path) -> LocalCa:
    return LocalCa.ensure(tmp_path / "ca")


@pytest.fixture
def tls(ca: LocalCa, tmp_path: Path) -> TlsFiles:
    return ca.issue(NAME, tmp_path / "tls")


@pytest.fixture
def tls_agent(agent_factory, tls: TlsFiles) -> AgentProcess:
    env = {"SAM_TLS_CERT": str(tls.cert), "SAM_TLS_KEY": str(tls.key)}
    agent = agent_factory(backend="host", extra_env=env)
    assert agent.url.startswith("https://")
    return agent


def test_a_client_that_trusts_the_ca_reaches_the_agent(tls_agent: AgentProcess, ca) -> None:
    with verified_client(ca.cert_path, NAME, tls_agent.port) as client:
        assert client.get("/health").status_code == 200
        listed = client.get("/workspaces", headers=tls_agent.auth())
        assert listed.status_code == 200, listed.text


def test_a_client_that_trusts_another_ca_is_refused(tls_agent: AgentProcess, tmp_path) -> None:
    other = LocalCa.ensure(tmp_path / "other-ca", name="not the nodes' CA")
    with (
        verified_client(other.cert_path, NAME, tls_agent.port) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get("/health")


def test_the_certificate_holds_for_its_own_name_only(tls_agent: AgentProcess, ca) -> None:
    with (
        verified_client(ca.cert_path, "vm-n2.localhost", tls_agent.port) as client,
        pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"),
    ):
        client.get("/health")


def test_plain_http_to_the_tls_port_gets_no_answer(tls_agent: AgentProcess) -> None:
    request = (
        f"GET /workspaces HTTP/1.1\r\nHost: {NAME}\r\nAuthorization: Bearer {CANARY}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", tls_agent.port), timeout=10) as plain:
        plain.sendall(request)
        received = b""
        while chunk := plain.recv(4096):
            received += chunk
    assert not received.startswith(b"HTTP/"), received[:200]
    assert b"workspaces" not in received
    # Still serving, and nothing of the refused request reached its log.
    assert tls_agent.running
    assert CANARY not in tls_agent.log()


def run_agent(
    tmp_path: Path, control_plane, extra_env: dict[str, str]
) -> subprocess.CompletedProcess:
    env = agent_environ(control_plane, tmp_path / "state", free_port(), "host", extra_env)
    return subprocess.run(
        [sys.executable, "-m", "agent"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_key_others_can_read_is_refused(tmp_path: Path, control_plane, tls: TlsFiles) -> None:
    os.chmod(tls.key, 0o644)
    done = run_agent(
        tmp_path, control_plane, {"SAM_TLS_CERT": str(tls.cert), "SAM_TLS_KEY": str(tls.key)}
    )
    assert done.returncode == 2, done.stderr
    assert "SAM_TLS_KEY" in done.stderr and "chmod 600" in done.stderr
    key_body = tls.key.read_text().splitlines()[1]
    assert key_body not in done.stderr + done.stdout


def test_a_key_that_is_not_the_certificates_is_a_clear_start_failure(
    tmp_path: Path, control_plane, ca: LocalCa, tls: TlsFiles
) -> None:
    stranger = ca.issue(NAME, tmp_path / "stranger")
    done = run_agent(
        tmp_path, control_plane, {"SAM_TLS_CERT": str(tls.cert), "SAM_TLS_KEY": str(stranger.key)}
    )
    assert done.returncode == 1, done.stderr
    assert "agent.start_failed" in done.stderr and "Traceback" not in done.stderr
    assert stranger.key.read_text().splitlines()[1] not in done.stderr
