"""A workspace is a sandbox: it sees none of the node's traffic and reaches nothing of the
node's but its own channel.

The sniffer of the attack run (AF_PACKET, as root through the workspace user's sudo) is
run three ways: in the OLD configuration (host network + NET_RAW, asked for explicitly
through the owner's opt-in) it captures a canary token that another session sends to the
agent over loopback, which shows that it works; on the workspace's own network, even with
NET_RAW granted, it captures nothing; in the default sandbox it cannot open its socket.
"""

import json
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.agent.sandbox.conftest import (
    BASE_IMAGE,
    create,
    delete,
    in_container,
    running,
)
from tests.fixtures.repos import make_repo
from tests.support.agent import AgentProcess

CANARY = "sam-canary-7f3a9c1e5b2d4086"
CANARY_REQUESTS = 5
# Reads the canary (stdin line 1), opens a packet socket on every interface, waits for "go"
# (stdin line 2: the canary was sent meanwhile), then sends itself a sentinel datagram and
# reads what it captured up to the sentinel: the answer does not depend on timing.
SNIFFER = r"""
import socket, sys
canary = sys.stdin.readline().strip().encode()
try:
    sniffer = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
except PermissionError as exc:
    print("no-socket", exc, flush=True)
    sys.exit(2)
sniffer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
print("listening", flush=True)
sys.stdin.readline()
sentinel = b"sam-sentinel-" + canary[::-1]
socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(sentinel, (sys.argv[1], 9))
sniffer.settimeout(30)
seen = False
while True:
    frame = sniffer.recv(65535)
    seen = seen or canary in frame
    if sentinel in frame:
        break
print("captured" if seen else "nothing", flush=True)
"""
PROBE = r"""
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=3).close()
    print("open")
except socket.timeout:
    print("dropped")
except ConnectionRefusedError:
    print("refused")
except OSError as exc:
    print("unreachable", exc)
"""
WHOAMI = r"""
import sys, urllib.request, urllib.error
request = urllib.request.Request(sys.argv[1], headers={sys.argv[2]: sys.stdin.read().strip()})
try:
    with urllib.request.urlopen(request, timeout=5) as answer:
        print(answer.status, answer.read().decode())
except urllib.error.HTTPError as exc:
    print(exc.code, exc.read().decode())
"""


@pytest.fixture(autouse=True)
def root() -> None:
    """Only a root agent installs the firewall (as on every VM); CI runs as root."""
    assert os.geteuid() == 0, "the sandbox tests need a root agent: run them as root"


@pytest.fixture
def host_service() -> Iterator[int]:
    """A service of the host's listening on every address (as the agent does on a VM)."""
    server = socket.create_server(("0.0.0.0", 0))
    port = server.getsockname()[1]

    def serve() -> None:
        while True:
            try:
                connection, _ = server.accept()
            except OSError:
                return
            connection.sendall(b"host-service\n")
            connection.close()

    threading.Thread(target=serve, daemon=True).start()
    yield port
    server.close()


def gateway_of(container: str) -> str:
    networks = json.loads(
        subprocess.run(
            ["docker", "inspect", "--format", "{{json .NetworkSettings.Networks}}", container],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    (network,) = networks.values()
    return network["Gateway"]


def channel_of(agent: AgentProcess, workspace_id: str) -> dict[str, object]:
    return json.loads((agent.state_dir / "channels" / f"{workspace_id}.json").read_text())


def probe(container: str, host: str, port: int) -> str:
    return in_container(container, PROBE, host, str(port)).stdout.strip()


def whoami(container: str, url: str, token: str, header: str = "Authorization") -> str:
    value = f"Bearer {token}" if header == "Authorization" else token
    return in_container(container, WHOAMI, url, header, stdin=value).stdout.strip()


def sniff(agent: AgentProcess, container: str, sentinel_to: str) -> str:
    """Run the sniffer as root in `container` while another session sends the canary as
    a bearer token to the agent over the host's loopback."""
    argv = ["docker", "exec", "-i", "-u", "sam", container, "sudo", "python3", "-c", SNIFFER]
    sniffer = subprocess.Popen(
        [*argv, sentinel_to],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert sniffer.stdin is not None and sniffer.stdout is not None
        sniffer.stdin.write(CANARY + "\n")
        sniffer.stdin.flush()
        first = sniffer.stdout.readline().strip()
        if first != "listening":
            return first
        for _ in range(CANARY_REQUESTS):
            answer = httpx.get(
                f"{agent.url}/workspaces", headers={"Authorization": f"Bearer {CANARY}"}
            )
            assert answer.status_code == 401
        sniffer.stdin.write("go\n")
        sniffer.stdin.flush()
        return sniffer.stdout.readline().strip()
    finally:
        sniffer.kill()
        sniffer.wait()


def test_the_sniffer_captures_in_the_old_configuration_and_nothing_in_the_sandbox(
    docker_agent: AgentProcess, tmp_path: Path
) -> None:
    old = {"image": BASE_IMAGE, "runArgs": ["--network", "host"], "capAdd": ["NET_RAW"]}
    raw_only = {"image": BASE_IMAGE, "capAdd": ["NET_RAW"]}
    create(docker_agent, "ws-old", make_repo(tmp_path, "old", old), trusted_devcontainer=True)
    create(docker_agent, "ws-raw", make_repo(tmp_path, "raw", raw_only), trusted_devcontainer=True)
    create(docker_agent, "ws-sandbox", make_repo(tmp_path, "sandbox"))
    try:
        old_container = running(docker_agent, "ws-old")["container_id"]
        raw_container = running(docker_agent, "ws-raw")["container_id"]
        sandboxed = running(docker_agent, "ws-sandbox")["container_id"]
        # Positive control: host networking + NET_RAW sees the other session's token.
        assert sniff(docker_agent, old_container, "127.0.0.1") == "captured"
        # Its own network hides the node's traffic even from a sniffer with NET_RAW.
        raw_gateway = gateway_of(raw_container)
        assert sniff(docker_agent, raw_container, raw_gateway) == "nothing"
        # And by default the sniffer has no packet socket at all (NET_RAW dropped), while
        # the user's own sudo still works.
        assert sniff(docker_agent, sandboxed, gateway_of(sandboxed)).startswith("no-socket")
        assert in_container(sandboxed, "import os; print(os.getuid())", user="sam").stdout == (
            "1000\n"
        )
        sudo = subprocess.run(
            ["docker", "exec", "-u", "sam", sandboxed, "sudo", "-n", "id", "-u"],
            capture_output=True,
            text=True,
        )
        assert sudo.stdout.strip() == "0", sudo.stderr
    finally:
        for workspace_id in ("ws-old", "ws-raw", "ws-sandbox"):
            delete(docker_agent, workspace_id)


def test_a_workspace_reaches_its_own_channel_and_nothing_else_of_the_node(
    docker_agent: AgentProcess, tmp_path: Path, host_service: int
) -> None:
    old = {"image": BASE_IMAGE, "runArgs": ["--network", "host"]}
    create(docker_agent, "ws-a", make_repo(tmp_path, "a"))
    create(docker_agent, "ws-b", make_repo(tmp_path, "b"))
    create(docker_agent, "ws-old", make_repo(tmp_path, "old", old), trusted_devcontainer=True)
    try:
        a = running(docker_agent, "ws-a")["container_id"]
        b = running(docker_agent, "ws-b")["container_id"]
        old_container = running(docker_agent, "ws-old")["container_id"]
        a_gateway, b_gateway = gateway_of(a), gateway_of(b)
        a_channel, b_channel = channel_of(docker_agent, "ws-a"), channel_of(docker_agent, "ws-b")
        a_url = f"http://{a_gateway}:{a_channel['port']}/whoami"

        # Controls: the host's service answers on the gateway address, and a container with
        # the old host networking reaches it and the agent.
        with socket.create_connection((a_gateway, host_service), timeout=3) as direct:
            assert direct.recv(64) == b"host-service\n"
        assert probe(old_container, "127.0.0.1", host_service) == "open"
        assert probe(old_container, "127.0.0.1", docker_agent.port) == "open"

        # The workspace's own channel answers it, by name, with its token (either header).
        assert whoami(a, a_url, str(a_channel["token"])) == '200 {"workspace_id": "ws-a"}'
        assert whoami(a, a_url, str(a_channel["token"]), "x-api-key").startswith("200")
        # B's token on A's channel: refused; no token: refused.
        assert whoami(a, a_url, str(b_channel["token"])).startswith("401")
        assert whoami(a, a_url, "").startswith("401")

        # Nothing else of the node: the host's services on the gateway (its own and B's),
        # the agent's port, B's channel (even with B's token), B's container.
        assert probe(a, a_gateway, host_service) == "dropped"
        assert probe(a, b_gateway, host_service) == "dropped"
        assert probe(a, a_gateway, docker_agent.port) == "dropped"
        assert probe(a, "127.0.0.1", docker_agent.port) == "refused"  # its own loopback
        assert probe(a, b_gateway, int(b_channel["port"])) == "dropped"
        b_address = subprocess.run(
            [
                "docker",
                "inspect",
                "--format",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
                b,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subprocess.run(
            ["docker", "exec", "-d", "-u", "sam", b, "python3", "-m", "http.server", "8765"],
            check=True,
        )
        assert probe(b, b_address, 8765) == "open"  # control: B's server is up
        assert probe(a, b_address, 8765) in ("dropped", "unreachable")

        # The channel dies with its workspace: nothing listens, the token is forgotten.
        delete(docker_agent, "ws-b")
        with pytest.raises(OSError):
            socket.create_connection((b_gateway, int(b_channel["port"])), timeout=3)
        assert not (docker_agent.state_dir / "channels" / "ws-b.json").exists()
        assert str(b_channel["token"]) not in docker_agent.log()
    finally:
        for workspace_id in ("ws-a", "ws-b", "ws-old"):
            with docker_agent.client() as client:
                client.delete(f"/workspaces/{workspace_id}")


def test_a_restarted_agent_finds_the_network_and_opens_the_same_channel(
    docker_agent: AgentProcess, tmp_path: Path
) -> None:
    create(docker_agent, "ws-a", make_repo(tmp_path, "a"))
    try:
        container = running(docker_agent, "ws-a")["container_id"]
        before = channel_of(docker_agent, "ws-a")
        url = f"http://{gateway_of(container)}:{before['port']}/whoami"
        assert whoami(container, url, str(before["token"])).startswith("200")
        docker_agent.kill()
        docker_agent.start()
        assert channel_of(docker_agent, "ws-a") == before
        assert whoami(container, url, str(before["token"])) == '200 {"workspace_id": "ws-a"}'
        stored = docker_agent.state_dir / "channels" / "ws-a.json"
        assert stored.stat().st_mode & 0o077 == 0
    finally:
        delete(docker_agent, "ws-a")
