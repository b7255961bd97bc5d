"""A cloud node's firewall, applied for real: the exact rules its cloud-init loads
(worker/nodes/providers/hetzner/firewall.py, written to /etc/sam-agent/firewall.nft) are
loaded with `nft -f` in a network namespace this test makes — the "node" — joined by a veth
pair to a second namespace — the "internet" — that holds a Cloudflare address and a
stranger's, over IPv4 and IPv6. Listeners stand on the agent's port and on SSH's inside
the node; probes connect from outside and from inside.

    before the rules: the stranger reaches the agent's port (the probes work)
    after:   Cloudflare → agent port       accepted (v4 and v6)
             stranger → agent port          dropped (v4 and v6)
             anyone → SSH                   dropped
             the node itself → agent port   accepted (loopback, v4 and v6)

All traffic stays inside the two namespaces. Needs root (network namespaces) and `nft` and
`ip` (scripts/system-packages); without them the test skips locally and fails in CI.
"""

import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from worker.nodes.providers.base import NodeBoot
from worker.nodes.providers.hetzner import cloud_init, firewall

AGENT_PORT = 443
NODE_V4, STRANGER_V4, CLOUDFLARE_V4 = "192.0.2.1", "192.0.2.10", "173.245.48.10"
NODE_V6, STRANGER_V6, CLOUDFLARE_V6 = "2001:db8::1", "2001:db8::10", "2400:cb00::10"
# A dropped SYN gets no answer at all: the probe gives up after this long. Accepted
# connections answer at once, so only the expected drops wait this out.
DROPPED_AFTER_SECONDS = 2.0
COMMAND_TIMEOUT_SECONDS = 30

LISTENER = """
import socket, sys
sockets = []
for port in map(int, sys.argv[1:]):
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("::", port))
    listener.listen()
    sockets.append(listener)
print("listening", flush=True)
import selectors
chooser = selectors.DefaultSelector()
for listener in sockets:
    chooser.register(listener, selectors.EVENT_READ)
while True:
    for key, _ in chooser.select():
        connection, _ = key.fileobj.accept()
        connection.sendall(b"hello")
        connection.close()
"""

PROBE = """
import socket, sys
source, target, port, timeout = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
family = socket.AF_INET6 if ":" in target else socket.AF_INET
probe = socket.socket(family, socket.SOCK_STREAM)
probe.settimeout(timeout)
if source != "-":
    probe.bind((source, 0))
try:
    probe.connect((target, port))
    print("answered" if probe.recv(5) == b"hello" else "silent")
except TimeoutError:
    print("dropped")
except ConnectionRefusedError:
    print("refused")
"""


@dataclass
class Namespaces:
    node: str
    internet: str

    def run(self, namespace: str, *command: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["ip", "netns", "exec", namespace, *command],
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
        )

    def probe(self, source: str, target: str, port: int) -> str:
        """From the internet (bound to `source`), or from the node itself (source "-")."""
        namespace = self.node if source == "-" else self.internet
        args = [source, target, str(port), str(DROPPED_AFTER_SECONDS)]
        done = self.run(namespace, sys.executable, "-c", PROBE, *args)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()


def ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    assert done.returncode == 0, f"ip {' '.join(args)}: {done.stderr}"


def require_tools() -> None:
    missing = [tool for tool in ("nft", "ip") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} missing: run scripts/system-packages")
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")


@pytest.fixture
def namespaces() -> Iterator[Namespaces]:
    require_tools()
    suffix = secrets.token_hex(3)
    made = Namespaces(f"sam-fw-node-{suffix}", f"sam-fw-net-{suffix}")
    node_end, internet_end = f"samfn{suffix}", f"samfi{suffix}"
    added = subprocess.run(["ip", "netns", "add", made.node], capture_output=True, text=True)
    if added.returncode != 0:
        pytest.skip(f"cannot make a network namespace here: {added.stderr.strip()}")
    try:
        ip("netns", "add", made.internet)
        ip("link", "add", node_end, "netns", made.node, "type", "veth", "peer", "name",
           internet_end, "netns", made.internet)  # fmt: skip
        for namespace, end, v4, v6 in (
            (made.node, node_end, [NODE_V4], [NODE_V6]),
            (made.internet, internet_end, [STRANGER_V4, CLOUDFLARE_V4],
             [STRANGER_V6, CLOUDFLARE_V6]),
        ):  # fmt: skip
            inside = ["-n", namespace]
            ip(*inside, "link", "set", "lo", "up")
            for address in v4:
                ip(*inside, "address", "add", f"{address}/24", "dev", end)
            for address in v6:
                ip(*inside, "-6", "address", "add", f"{address}/64", "dev", end, "nodad")
            ip(*inside, "link", "set", end, "up")
        # The internet's Cloudflare address is off the node's subnet: route it back there.
        ip("-n", made.node, "route", "add", "173.245.48.0/20", "dev", node_end)
        ip("-n", made.node, "-6", "route", "add", "2400:cb00::/32", "dev", node_end)
        yield made
    finally:
        for namespace in (made.node, made.internet):
            subprocess.run(["ip", "netns", "del", namespace], capture_output=True)


@pytest.fixture
def listening(namespaces: Namespaces) -> Iterator[None]:
    """Something answers on the agent's port and on SSH's inside the node."""
    ports = [str(AGENT_PORT), str(firewall.SSH_PORT)]
    listener = subprocess.Popen(
        ["ip", "netns", "exec", namespaces.node, sys.executable, "-c", LISTENER, *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline().strip() == "listening", listener.stderr
        yield
    finally:
        listener.kill()
        listener.wait()


def the_cloud_init_rules(tmp_path: Path) -> Path:
    """The firewall file exactly as the node's cloud-init writes it."""
    written = cloud_init.render(NodeBoot("n0123456789abcdef", "https://api.example.com", "A" * 43))
    marker = f"  - path: {cloud_init.FIREWALL_FILE}\n"
    assert marker in written
    rules = firewall.rules(AGENT_PORT)
    assert "\n".join(f"      {line}" if line else "" for line in rules.splitlines()) in written
    path = tmp_path / "firewall.nft"
    path.write_text(rules)
    return path


def test_the_agent_port_answers_cloudflare_and_loopback_only_and_ssh_no_one(
    namespaces: Namespaces, listening: None, tmp_path: Path
) -> None:
    # The probes work: without the rules a stranger reaches both ports.
    assert namespaces.probe(STRANGER_V4, NODE_V4, AGENT_PORT) == "answered"
    assert namespaces.probe(STRANGER_V6, NODE_V6, firewall.SSH_PORT) == "answered"

    rules = the_cloud_init_rules(tmp_path)
    for _ in range(2):  # as at first boot, then again as nftables.service does on reboot
        loaded = namespaces.run(namespaces.node, "nft", "-f", str(rules))
        assert loaded.returncode == 0, loaded.stderr

    assert namespaces.probe(CLOUDFLARE_V4, NODE_V4, AGENT_PORT) == "answered"
    assert namespaces.probe(CLOUDFLARE_V6, NODE_V6, AGENT_PORT) == "answered"
    assert namespaces.probe("-", "127.0.0.1", AGENT_PORT) == "answered"
    assert namespaces.probe("-", "::1", AGENT_PORT) == "answered"
    assert namespaces.probe(STRANGER_V4, NODE_V4, AGENT_PORT) == "dropped"
    assert namespaces.probe(STRANGER_V6, NODE_V6, AGENT_PORT) == "dropped"
    assert namespaces.probe(STRANGER_V4, NODE_V4, firewall.SSH_PORT) == "dropped"
    assert namespaces.probe(CLOUDFLARE_V4, NODE_V4, firewall.SSH_PORT) == "dropped"

    tables = namespaces.run(namespaces.node, "nft", "list", "tables")
    assert tables.stdout.split().count(firewall.TABLE) == 1, "reloading replaces the table"
