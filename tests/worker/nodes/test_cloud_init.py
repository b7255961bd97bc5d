"""A Hetzner node's cloud-init: what it holds (no secret, under 32 KiB, valid YAML, shell
and nftables), and — the end-to-end test of the cloud path — that the loopback Hetzner
API boots a real agent by following it, through the real edge: POST /api/nodes → VM →
artifact download → bootstrap exchange → key and CSR → Origin CA certificate → agent over
TLS → ready → running; delete → VM, DNS record and certificate gone, agent stopped.
"""

import json
import stat
import subprocess
import tarfile
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest
import yaml

from agent.config import CHECKOUT_CONTAINER_TOOLS, VM_CONTAINER_TOOLS
from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.hetzner import FakeHetzner
from tests.support.agent_tls import verified_client
from tests.support.artifact import agent_artifact, upload_agent
from tests.support.edge import Edge, running_edge, signed_in
from tests.support.wait import wait_for
from tests.worker.node_support import add_user
from tests.worker.provider_support import provider_deployment
from wire.version import VERSION
from worker.auth import scoped_tokens
from worker.auth.credentials import CredentialKind, save_credential
from worker.nodes.providers.base import NodeBoot
from worker.nodes.providers.hetzner import cloud_init, firewall

TOKEN = "A" * 43
BOOT = NodeBoot("n0123456789abcdef", "https://api.sam.example.com", TOKEN)
BOOT_TIMEOUT_SECONDS = 180
READY_TIMEOUT_SECONDS = 30


def parsed(user_data: str) -> dict[str, Any]:
    assert user_data.startswith("#cloud-config\n")
    return yaml.safe_load(user_data)


def files(user_data: str) -> dict[str, dict[str, Any]]:
    return {entry["path"]: entry for entry in parsed(user_data)["write_files"]}


def test_it_is_a_cloud_config_that_writes_the_agent_settings_and_runs_the_steps() -> None:
    written = files(cloud_init.render(BOOT))
    env = dict(line.split("=", 1) for line in written["/etc/sam-agent/env"]["content"].splitlines())
    assert env == {
        "SAM_NODE_ID": BOOT.node_id,
        "SAM_CONTROL_PLANE_URL": BOOT.control_plane_url,
        "SAM_AGENT_HOST": "0.0.0.0",
        "SAM_AGENT_PORT": "443",
        "SAM_CLOUD_NODE": "true",
        "SAM_BACKEND": "docker",
        "SAM_STATE_DIR": "/var/lib/sam-agent",
        "SAM_CALLBACK_TOKEN_FILE": "/var/lib/sam-agent/callback-token",
        "SAM_TLS_CERT": "/etc/sam-agent/tls/cert.pem",
        "SAM_TLS_KEY": "/etc/sam-agent/tls/key.pem",
    }
    assert written["/etc/sam-agent/bootstrap-token"]["permissions"] == "0600"
    steps = sorted(path for path in written if path.startswith("/opt/sam-agent/setup/"))
    assert [Path(step).name for step in steps] == [
        "10-packages.sh",
        "20-agent.sh",
        "25-container-tools.sh",
        "30-token.sh",
        "35-tls.sh",
        "40-firewall.sh",
        "50-service.sh",
        "60-ready.sh",
        "run",
    ]
    assert parsed(cloud_init.render(BOOT))["runcmd"] == [["sh", "/opt/sam-agent/setup/run"]]
    agent = written["/opt/sam-agent/setup/20-agent.sh"]["content"]
    assert "https://api.sam.example.com/api/agent/download" in agent
    assert "sha256sum --quiet -c SHA256SUMS" in agent and "install.sh" in agent
    exchange = written["/opt/sam-agent/setup/30-token.sh"]["content"]
    assert "https://api.sam.example.com/api/bootstrap/" in exchange and "umask 077" in exchange
    tls = written["/opt/sam-agent/setup/35-tls.sh"]["content"]
    assert "umask 077" in tls and "/tls-certificate" in tls and "openssl req -new" in tls
    firewall_rules = written["/etc/sam-agent/firewall.nft"]["content"]
    assert firewall_rules == firewall.rules(443), (
        "the text tests/worker/nodes/test_firewall.py runs"
    )
    packages = written["/opt/sam-agent/setup/10-packages.sh"]["content"]
    assert "docker.io" in packages and f"v{cloud_init.NODE_VERSION}" in packages
    assert f"@devcontainers/cli@{cloud_init.DEVCONTAINER_CLI_VERSION}" in packages
    assert cloud_init.NODE_VERSION.startswith("20.")
    service = written["/opt/sam-agent/setup/50-service.sh"]["content"]
    assert "sam-agent.service" in service and "systemctl enable --now sam-agent" in service


def test_the_vm_installs_the_container_tools_the_agent_mounts_from_the_artifacts_lock(
    tmp_path: Path,
) -> None:
    step = files(cloud_init.render(BOOT))["/opt/sam-agent/setup/25-container-tools.sh"]["content"]
    assert str(VM_CONTAINER_TOOLS) == cloud_init.CONTAINER_TOOLS_DIR
    assert f"cd {VM_CONTAINER_TOOLS}\n" in step and cloud_init.CONTAINER_TOOLS_NPM_CI in step
    # The artifact carries tools/container's own package.json and lock, checked by its sums.
    with tarfile.open(agent_artifact()) as artifact:
        names = {
            Path(member.name).relative_to(Path(member.name).parts[0]).as_posix(): member
            for member in artifact.getmembers()
            if len(Path(member.name).parts) > 1
        }
        for name in ("package.json", "package-lock.json"):
            carried = artifact.extractfile(names[f"container-tools/{name}"])
            assert carried is not None
            (tmp_path / name).write_bytes(carried.read())
            assert (tmp_path / name).read_bytes() == (CHECKOUT_CONTAINER_TOOLS / name).read_bytes()
        sums = artifact.extractfile(names["SHA256SUMS"])
        assert sums is not None and b"container-tools/package-lock.json" in sums.read()
    # The step's own npm command installs from that lock: here offline and dry, from the
    # cache that scripts/setup filled installing tools/container (the VM downloads).
    command = cloud_init.CONTAINER_TOOLS_NPM_CI.replace("/usr/local/bin/npm", "npm").split()
    done = subprocess.run(
        [*command, "--offline", "--dry-run"], cwd=tmp_path, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert "@agentclientprotocol/claude-agent-acp" in done.stdout + done.stderr


def test_the_devcontainer_cli_pin_matches_the_projects() -> None:
    package = (Path(__file__).resolve().parents[3] / "package.json").read_text()
    assert f'"@devcontainers/cli": "{cloud_init.DEVCONTAINER_CLI_VERSION}"' in package


def test_every_script_is_valid_shell() -> None:
    for path, entry in files(cloud_init.render(BOOT)).items():
        if path.startswith("/opt/sam-agent/setup/"):
            checked = subprocess.run(["sh", "-n"], input=entry["content"], text=True)
            assert checked.returncode == 0, path


def test_it_stays_under_hetzners_32_kib_even_for_the_longest_values() -> None:
    assert cloud_init.MAX_USER_DATA_BYTES == 32 * 1024
    longest = NodeBoot(
        "n" * 128, "https://api." + "d" * 200 + ".example.com:65535", "x" * 128, 65535
    )
    assert len(cloud_init.render(longest).encode()) <= cloud_init.MAX_USER_DATA_BYTES


@pytest.mark.parametrize(
    "boot",
    [
        NodeBoot("n1; rm -rf /", BOOT.control_plane_url, TOKEN),
        NodeBoot("n1", "https://api.example.com/$(id)", TOKEN),
        NodeBoot("n1", BOOT.control_plane_url, "tok'en" * 8),
        NodeBoot("n1\n  - path: /etc/shadow", BOOT.control_plane_url, TOKEN),
    ],
)
def test_a_value_that_could_inject_shell_or_yaml_is_refused(boot: NodeBoot) -> None:
    with pytest.raises(AssertionError):
        cloud_init.render(boot)


async def test_it_holds_no_secret_only_the_bootstrap_token(tmp_path: Path) -> None:
    secrets = {
        "hetzner": "hz_" + "s" * 61,
        "anthropic": "sk-ant-" + "k" * 40,
    }
    async with provider_deployment(tmp_path / ".sam", None, None) as deployment:
        user = await add_user(deployment.env, "alice")
        for kind, value in secrets.items():
            await save_credential(deployment, user, CredentialKind(kind), "", value)
        callback = (await scoped_tokens.mint_node_token(deployment, BOOT.node_id)).token
        user_data = cloud_init.render(BOOT)
        sealed = await deployment.env.DATABASE.prepare("SELECT ciphertext FROM credentials").all()
        key = deployment.env.SAM_ENCRYPTION_KEY
    for value in [*secrets.values(), callback, key]:
        assert value not in user_data
    for row in sealed["results"]:
        assert bytes(row["ciphertext"]).hex() not in user_data
    assert user_data.count(TOKEN) == 1, "the bootstrap token, once, in its 0600 file"


# --- the cloud path, end to end ------------------------------------------------------------


@pytest.fixture(scope="module")
def artifact() -> Path:
    return agent_artifact()


@pytest.fixture(scope="module")
def cloud(
    tmp_path_factory: pytest.TempPathFactory, artifact: Path
) -> Iterator[tuple[Edge, FakeHetzner, FakeCloudflareDns]]:
    base = tmp_path_factory.mktemp("cloud")
    with (
        FakeHetzner(boot=True, boot_root=base) as hetzner,
        FakeCloudflareDns() as dns,
        running_edge(
            base / ".sam",
            vars={"SAM_HETZNER_API_URL": hetzner.url, **dns.vars()},
            # The edge stands where Cloudflare's proxy would, which trusts its Origin CA.
            trust_cas=[dns.origin_ca_root(base)],
        ) as edge,
    ):
        uploaded = upload_agent(edge.data_dir, artifact)
        assert uploaded.returncode == 0, uploaded.stderr
        yield edge, hetzner, dns
        assert hetzner.all_servers() == [], "a VM outlived the test that made it"


def test_the_fake_hetzner_boots_a_real_agent_from_the_real_cloud_init(
    cloud: tuple[Edge, FakeHetzner, FakeCloudflareDns],
) -> None:
    edge, hetzner, dns = cloud
    hetzner_token = hetzner.add_token()
    # Creating a node waits on the provider, hence the longer client timeout.
    with (
        closing(signed_in(edge, "carol", timeout_seconds=60.0)) as carol,
        edge.client("api") as api,
    ):
        saved = carol.post("/api/credentials", json={"kind": "hetzner", "secret": hetzner_token})
        assert saved.status_code == 201, saved.text
        created = carol.post("/api/nodes", json={"provider": "hetzner", "size": "small"})
        assert created.status_code == 201, created.text
        node = created.json()
        assert node["status"] == "creating"
        assert node["agent_host"] == f"vm-{node['id']}.localhost"

        [server] = hetzner.servers(hetzner_token)
        boot = server.boot
        assert boot is not None and boot.done.wait(BOOT_TIMEOUT_SECONDS), "boot hung"
        assert boot.error is None, boot.report()
        assert [s.returncode for s in boot.steps] == [None, 0, None, 0, 0, None, None, 0], (
            boot.report()
        )

        # The agent the VM runs is the artifact's, installed by its install.sh, and serves
        # TLS for its own name with the Origin CA's certificate over the key it made.
        root = dns.origin_ca_root(edge.data_dir.parent)
        with verified_client(root, node["agent_host"], boot.agent_port) as agent:
            health = agent.get("/health").json()
        assert health == {
            "status": "ok",
            "node_id": node["id"],
            "agent_version": VERSION,
        }
        key = boot.path("/etc/sam-agent/tls/key.pem")
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        [certificate] = dns.live_certificates(node["agent_host"])
        assert certificate["request_type"] == "origin-ecc"
        key_line = key.read_text().splitlines()[1]
        assert key_line not in server.user_data and all(
            key_line not in json.dumps(r.body) for r in dns.requests
        ), "the key never leaves the VM"
        venv = boot.path("/opt/sam-agent/venv/bin/python")
        assert boot.agent is not None and boot.agent.args[0] == str(venv)

        # Its token file holds a sam:node token for this node, 0600; the bootstrap token
        # file is gone, and the token itself does not work twice.
        token_file = boot.path("/var/lib/sam-agent/callback-token")
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert not boot.path("/etc/sam-agent/bootstrap-token").exists()
        bootstrap_token = yaml.safe_load(server.user_data)["write_files"][1]["content"].strip()
        replay = api.post(f"/api/bootstrap/{bootstrap_token}")
        assert replay.status_code == 401 and replay.json()["error"] == "invalid_bootstrap_token"

        # The ready callback (60-ready.sh) and heartbeats reach the control plane.
        def running() -> dict[str, Any] | None:
            shown = carol.get(f"/api/nodes/{node['id']}").json()
            return shown if shown["status"] == "running" else None

        try:
            shown = wait_for(running, "the node to be running", READY_TIMEOUT_SECONDS)
        except AssertionError as timed_out:
            raise AssertionError(f"{timed_out}\n{boot.report()}") from None
        assert shown["agent_port"] == boot.agent_port
        [record] = dns.records_named(node["agent_host"])
        assert record["content"] == "127.0.0.1" and record["proxied"] is True

        # No secret of the user's went into the VM's user_data.
        callback_token = token_file.read_text().strip()
        assert hetzner_token not in server.user_data and callback_token not in server.user_data

        deleted = carol.delete(f"/api/nodes/{node['id']}")
        assert deleted.status_code == 204, deleted.text
    assert hetzner.servers(hetzner_token) == []
    assert dns.records_named(node["agent_host"]) == []
    assert dns.live_certificates(node["agent_host"]) == [], "revoked with its node"
    assert boot.agent.poll() is not None, "deleting the VM stops its agent"
    assert hetzner_token not in edge.log() and callback_token not in edge.log()
