"""Dev sign-in hands out any identity (admin included), so only to this machine: a loopback
peer asking for a `*.localhost` host. `sam dev --host 0.0.0.0` must not share it."""

import socket
from pathlib import Path

import httpx

from tests.support.edge import running_edge

# Routing to a documentation address sends nothing; it only picks the outgoing interface.
UNROUTED_PROBE = ("192.0.2.1", 9)


def this_machines_network_address() -> str:
    """An address of this machine that is not loopback (the one a LAN peer would reach)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(UNROUTED_PROBE)
        address = probe.getsockname()[0]
    assert not address.startswith("127."), "this machine has no non-loopback IPv4 address"
    return address


def dev_login(client: httpx.Client) -> httpx.Response:
    return client.post("/api/auth/dev-login", json={"login": "intruder"})


def assert_refused_as_not_local(response: httpx.Response, *said: str) -> None:
    assert response.status_code == 403, response.text
    assert response.json()["error"] == "dev_login_not_local"
    for text in said:
        assert text in response.json()["message"]
    assert "sam_session" not in response.headers.get("set-cookie", "")


def test_dev_login_is_refused_to_a_peer_on_the_network(tmp_path: Path) -> None:
    address = this_machines_network_address()
    with running_edge(tmp_path / ".sam", host="0.0.0.0") as edge:
        app_host = {"host": edge.host("app")}
        with httpx.Client(base_url=f"http://{address}:{edge.port}", headers=app_host) as remote:
            assert_refused_as_not_local(dev_login(remote), address, "loopback")
        # The same edge still signs in a browser on this machine.
        with edge.client("app") as local:
            assert dev_login(local).status_code == 200


def test_dev_login_is_refused_on_a_host_outside_localhost(tmp_path: Path) -> None:
    domain = {"SAM_DOMAIN": "sam.example.test"}
    # /health is on api.{domain}, which the edge's own client does not ask for.
    with running_edge(tmp_path / ".sam", vars=domain, healthy=False) as edge:
        client = edge.client(headers={"host": "app.sam.example.test"})
        with client:
            assert_refused_as_not_local(dev_login(client), "app.sam.example.test", ".localhost")
