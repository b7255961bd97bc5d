"""The sandbox firewall's rules applied for real, on a node built of network namespaces.

A node namespace with two workspace bridges (`samw1`, `samw2`), a workspace namespace on
each, and an "internet" namespace behind the node's uplink (plus a metadata address, as
clouds have), with forwarding on in the node namespace only. Everything is probed first
without the rules (the controls: all of it answers), then with `firewall.RULESET` loaded
and one channel element: the workspace reaches the internet and its channel, nothing else
of the node, not the other workspace, not the metadata service, and nothing from outside
reaches into it. Only addresses inside these namespaces are used.
"""

import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from agent.workspaces.firewall import RULESET, channel_element

SERVER = r"""
import socket, sys
server = socket.create_server((sys.argv[1], int(sys.argv[2])))
print("ready", flush=True)
while True:
    connection, _ = server.accept()
    connection.sendall(b"ok")
    connection.close()
"""
PROBE = r"""
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1) as c:
        print("open" if c.recv(2) == b"ok" else "other")
except socket.timeout:
    print("dropped")
except OSError as exc:
    print("refused" if isinstance(exc, ConnectionRefusedError) else f"error {exc}")
"""
CHANNEL_PORT, OTHER_CHANNEL_PORT, AGENT_PORT, WEB_PORT = 9000, 9001, 8080, 80
INTERNET, METADATA = "10.77.9.2", "169.254.169.254"


@dataclass(frozen=True)
class Node:
    prefix: str

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def run(self, namespace: str, *argv: str) -> str:
        done = subprocess.run(
            ["ip", "netns", "exec", self.ns(namespace), *argv],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert done.returncode == 0, (argv, done.stderr)
        return done.stdout

    def probe(self, namespace: str, host: str, port: int) -> str:
        return self.run(namespace, "python3", "-c", PROBE, host, str(port)).strip()


def ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


@pytest.fixture
def node() -> Iterator[Node]:
    assert os.geteuid() == 0, "the firewall test builds network namespaces: run it as root"
    built = Node(f"sbx{uuid.uuid4().hex[:6]}")
    names = ("node", "ws1", "ws2", "inet")
    servers: list[subprocess.Popen[str]] = []
    for name in names:
        ip("netns", "add", built.ns(name))
        ip("-n", built.ns(name), "link", "set", "lo", "up")
    try:
        _wire(built)
        for namespace, host, port in (
            ("inet", INTERNET, WEB_PORT),
            ("inet", METADATA, WEB_PORT),
            ("node", "0.0.0.0", AGENT_PORT),  # the agent on every address, as on a VM
            ("node", "10.77.1.1", CHANNEL_PORT),  # ws1's channel
            ("node", "10.77.2.1", OTHER_CHANNEL_PORT),  # ws2's channel
            ("ws2", "10.77.2.2", WEB_PORT),  # a server in the other workspace
            ("ws1", "10.77.1.2", WEB_PORT),  # one in this workspace
        ):
            argv = ["ip", "netns", "exec", built.ns(namespace), "python3", "-c", SERVER]
            server = subprocess.Popen([*argv, host, str(port)], stdout=subprocess.PIPE, text=True)
            servers.append(server)
            assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield built
    finally:
        for server in servers:
            server.kill()
            server.wait()
        for name in names:
            subprocess.run(["ip", "netns", "del", built.ns(name)], capture_output=True)


def _wire(node: Node) -> None:
    n = node.ns("node")
    for index in (1, 2):
        bridge, workspace = f"samw{index}", node.ns(f"ws{index}")
        ip("-n", n, "link", "add", bridge, "type", "bridge")
        ip("-n", n, "addr", "add", f"10.77.{index}.1/24", "dev", bridge)
        ip("-n", n, "link", "set", bridge, "up")
        ip("-n", n, "link", "add", f"w{index}", "type", "veth", "peer", "eth0", "netns", workspace)
        ip("-n", n, "link", "set", f"w{index}", "master", bridge, "up")
        ip("-n", workspace, "addr", "add", f"10.77.{index}.2/24", "dev", "eth0")
        ip("-n", workspace, "link", "set", "eth0", "up")
        ip("-n", workspace, "route", "add", "default", "via", f"10.77.{index}.1")
    inet = node.ns("inet")
    ip("-n", n, "link", "add", "uplink", "type", "veth", "peer", "eth0", "netns", inet)
    ip("-n", n, "addr", "add", "10.77.9.1/24", "dev", "uplink")
    ip("-n", n, "link", "set", "uplink", "up")
    ip("-n", n, "route", "add", f"{METADATA}/32", "via", INTERNET)
    ip("-n", inet, "addr", "add", f"{INTERNET}/24", "dev", "eth0")
    ip("-n", inet, "addr", "add", f"{METADATA}/32", "dev", "eth0")
    ip("-n", inet, "link", "set", "eth0", "up")
    ip("-n", inet, "route", "add", "10.77.0.0/16", "via", "10.77.9.1")
    node.run("node", "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")


def test_a_workspace_bridge_reaches_the_internet_and_its_channel_and_nothing_else(
    node: Node,
) -> None:
    cases = {
        ("ws1", INTERNET, WEB_PORT): "open",  # its own traffic out: forwarded
        ("ws1", "10.77.1.1", CHANNEL_PORT): "open",  # its channel
        ("ws1", "10.77.1.1", AGENT_PORT): "dropped",  # the agent, on its gateway
        ("ws1", "10.77.9.1", AGENT_PORT): "dropped",  # the agent, on the uplink address
        ("ws1", "10.77.2.1", OTHER_CHANNEL_PORT): "dropped",  # the other one's channel
        ("ws1", "10.77.2.2", WEB_PORT): "dropped",  # the other workspace
        ("ws1", METADATA, WEB_PORT): "dropped",  # the cloud's metadata service
        ("inet", "10.77.1.2", WEB_PORT): "dropped",  # from outside into the workspace
        ("ws2", "10.77.2.1", OTHER_CHANNEL_PORT): "dropped",  # no element: closed
    }
    # Controls: without the rules, every one of them answers.
    for (where, host, port), _expected in cases.items():
        assert node.probe(where, host, port) == "open", (where, host, port)
    node.run("node", "nft", RULESET)
    node.run("node", "nft", f"add element {channel_element('samw1', '10.77.1.1', CHANNEL_PORT)}")
    found = {case: node.probe(*case) for case in cases}
    assert found == cases
    # The node itself still reaches its workspaces and the internet.
    assert node.probe("node", "10.77.1.2", WEB_PORT) == "open"
    assert node.probe("node", INTERNET, WEB_PORT) == "open"
