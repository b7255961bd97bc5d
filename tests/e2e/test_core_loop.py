"""SAM's core loop, end to end, on both providers, through the real local edge:

    sign in (GitHub OAuth on the fake; dev sign-in) → store a Hetzner token and an API key
    → POST /api/workspaces → a node is provisioned (hetzner: the fake boots a real agent by
    following the node's cloud-init; local: sam dev's launcher starts one) → the agent
    reports ready → devcontainer up → POST /api/terminal/token → a terminal through
    ws-{id}.localhost:PORT runs `echo $((6*7))` and prints 42 → stop → the node is warm
    → the warm window (SAM_WARM_TIMEOUT_SECONDS, real seconds on the edge's clock) ends
    → the NodeLifecycle alarm tears the node down: VM deleted on the fake Hetzner, DNS
    record deleted on the fake Cloudflare → the fake Hetzner holds no server D1 does
    not know.

Then, with the edge stopped: no plaintext credential (the Hetzner token, the API key, the
personal API token, the session id) in any file under the edge's data directory (D1, KV,
R2, Durable Objects, with their WAL files), in the edge's log, in the agent's log, or in
the cloud-init user_data the fake Hetzner received.
"""

import asyncio
import base64
import secrets
import sqlite3
import subprocess
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.e2e.browser import Browser
from tests.e2e.git_server import GitServer
from tests.fakes.anthropic import ScriptedModel
from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.github import FakeGitHub
from tests.fakes.hetzner import FakeHetzner
from tests.fixtures.repos import make_repo
from tests.support.artifact import upload_agent
from tests.support.edge import Edge, running_edge
from tests.support.terminal_client import TerminalClient
from tests.support.wait import wait_for
from worker.api.ratelimit import LIMITS

WARM_TIMEOUT_SECONDS = 3
RUNNING_TIMEOUT_SECONDS = 300.0  # a cloud node installs the agent artifact first
TEARDOWN_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.25
LOOP_TIMEOUT_SECONDS = 900


def edge_vars(
    github: FakeGitHub, hetzner: FakeHetzner, dns: FakeCloudflareDns, anthropic: ScriptedModel
) -> dict[str, str]:
    return {
        "SAM_ANTHROPIC_API_URL": anthropic.url,  # checks the agent key before it is saved
        **github.vars(users="alice"),
        "SAM_HETZNER_API_URL": hetzner.url,
        **dns.vars(),
        "SAM_WARM_TIMEOUT_SECONDS": str(WARM_TIMEOUT_SECONDS),
        "SAM_RATE_LIMITS": ",".join(f"{name}=100000/60" for name in LIMITS),
    }


def d1_node_ids(edge: Edge) -> set[str]:
    with closing(sqlite3.connect(edge.data_dir / "d1" / "sam.sqlite")) as db:
        return {row[0] for row in db.execute("SELECT id FROM nodes")}


async def forty_two(edge: Edge, terminal: dict[str, Any]) -> bytes:
    """Open the terminal URL POST /api/terminal/token gave, as a browser would (Host
    ws-{id}.localhost:PORT, reached on 127.0.0.1); run the command; the whole output."""
    url = urlsplit(terminal["url"])
    assert url.scheme == "ws" and url.hostname == f"ws-{terminal['workspace_id']}.localhost"
    assert url.port == edge.port
    async with TerminalClient.connect(
        f"http://127.0.0.1:{edge.port}{url.path}", host=url.netloc, token=terminal["token"]
    ) as term:
        session = await term.create()
        await term.run(session, "echo $((6*7))")
        await term.wait_for_line(session, b"42")
        await term.end_session(session)
        return bytes(term.output[session])


@pytest.mark.timeout(LOOP_TIMEOUT_SECONDS)
@pytest.mark.parametrize("provider, login", [("hetzner", "github"), ("local", "dev")])
def test_the_core_loop(
    provider: str,
    login: str,
    tmp_path: Path,
    artifact: Path,
    github: FakeGitHub,
    hetzner: FakeHetzner,
    dns: FakeCloudflareDns,
    git: GitServer,
    anthropic: ScriptedModel,
    e2e_nodes: set[str],
) -> None:
    data_dir = tmp_path / ".sam"
    repo = make_repo(tmp_path, f"project-{provider}", files={"README.md": "# e2e\n"})
    # A cloud node clones by URL, as from GitHub; a local node may use a path.
    repository = git.publish(repo) if provider == "hetzner" else str(repo)
    plaintext: dict[str, str] = {}
    logs: dict[str, str] = {}
    # The edge stands where Cloudflare's proxy would: it trusts the (loopback) Origin CA.
    origin_ca = dns.origin_ca_root(tmp_path)
    with running_edge(
        data_dir, vars=edge_vars(github, hetzner, dns, anthropic), trust_cas=[origin_ca]
    ) as edge:
        uploaded = upload_agent(edge.data_dir, artifact)
        assert uploaded.returncode == 0, uploaded.stderr
        browser = Browser(edge)
        user = "alice" if login == "github" else "bob"
        me = browser.github_login(github, user) if login == "github" else browser.dev_login(user)
        assert me["login"] == user, me
        plaintext["session id"] = browser.session

        # Credentials: a Hetzner token (validated against the fake first) and an API key.
        hetzner_token = hetzner.add_token()
        plaintext["hetzner token"] = hetzner_token
        plaintext["anthropic key"] = "sk-ant-api03-" + secrets.token_urlsafe(32)
        for kind, secret in (("hetzner", hetzner_token), ("anthropic", plaintext["anthropic key"])):
            saved = browser.post("/api/credentials", json={"kind": kind, "secret": secret})
            assert saved.status_code == 201, saved.text
            assert secret not in saved.text
        made = browser.post("/api/tokens", json={"name": "e2e"})
        assert made.status_code == 201, made.text
        plaintext["personal API token"] = made.json()["token"]

        # Create → placed on a new node → the agent brings the devcontainer up.
        created = browser.post(
            "/api/workspaces", json={"repository": repository, "provider": provider}
        )
        assert created.status_code == 202, created.text
        workspace_id = created.json()["id"]

        def running() -> dict[str, Any] | None:
            shown = browser.get(f"/api/workspaces/{workspace_id}").json()
            if shown["status"] == "error":
                boot_log = browser.get(f"/api/workspaces/{workspace_id}/boot-log").text
                boots = "\n".join(s.boot.report() for s in hetzner.all_servers() if s.boot)
                raise AssertionError(f"workspace failed: {shown}\n{boot_log}\n{boots}")
            return shown if shown["status"] == "running" else None

        workspace = wait_for(running, "the workspace to run", RUNNING_TIMEOUT_SECONDS)
        node_id = workspace["node_id"]
        e2e_nodes.add(node_id)
        node = browser.get(f"/api/nodes/{node_id}").json()
        assert (node["provider"], node["status"], node["warm"]) == (provider, "running", False)
        if provider == "hetzner":
            [server] = hetzner.servers(hetzner_token)
            assert server.labels["sam-node"] == node_id
            assert node["agent_host"] == f"vm-{node_id}.localhost"
            [record] = dns.records_named(node["agent_host"])
            assert record["content"] == "127.0.0.1"
        else:
            assert hetzner.servers(hetzner_token) == []

        # The terminal, through the ws-{id} proxy.
        terminal = browser.post("/api/terminal/token", json={"workspace_id": workspace_id})
        assert terminal.status_code == 200, terminal.text
        output = asyncio.run(forty_two(edge, terminal.json()))
        assert b"42" in output

        # What the agent logged (the VM's disk and a local node's directory go with it).
        if provider == "hetzner":
            assert server.boot is not None
            logs["agent (VM)"] = server.boot.report() + server.boot.agent_log()
        else:
            logs["agent (local)"] = (data_dir / "nodes" / node_id / "agent.log").read_text()
            edge.assert_docker_backend(node_id)
        agent_log = logs["agent (VM)"] if provider == "hetzner" else logs["agent (local)"]
        assert f"agent.started node_id={node_id} backend=docker " in agent_log, agent_log[-2000:]

        # Stop → the node is warm → the window ends → the node is torn down.
        stopped = browser.post(f"/api/workspaces/{workspace_id}/stop")
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["status"] == "stopped"
        warm = browser.get(f"/api/nodes/{node_id}").json()
        assert warm["warm"] is True and warm["workspace_count"] == 0, warm
        wait_for(
            lambda: browser.get(f"/api/nodes/{node_id}").status_code == 404,
            "the warm node to be torn down",
            WARM_TIMEOUT_SECONDS + TEARDOWN_TIMEOUT_SECONDS,
        )
        assert hetzner.servers(hetzner_token) == [], "the VM outlived its node"
        assert dns.records_named(f"vm-{node_id}.localhost") == [], "the DNS record outlived it"
        if provider == "local":
            assert not (data_dir / "nodes" / node_id).exists()
        # Checked last (after the secrets), so that one run reports everything.
        containers = subprocess.run(
            ["docker", "ps", "--all", "--quiet", "--filter", f"label=sam.node={node_id}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()

        # Leak check: every server on the fake Hetzner belongs to a node D1 knows.
        known = d1_node_ids(edge)
        strays = [s.name for s in hetzner.all_servers() if s.labels.get("sam-node") not in known]
        assert strays == [], f"servers D1 does not know: {strays}"
        assert browser.get(f"/api/workspaces/{workspace_id}").json()["status"] == "stopped"

    # --- secrets: the edge is stopped, so its SQLite files are complete on disk ----------
    user_data = [
        str(call.body.get("user_data", ""))
        for call in hetzner.calls("/v1/servers", "POST")
        if call.token == hetzner_token and isinstance(call.body, dict)
    ]
    assert len(user_data) == (1 if provider == "hetzner" else 0)
    logs["edge"] = edge.log()
    logs.update({f"cloud-init #{i}": text for i, text in enumerate(user_data)})
    for path in sorted(data_dir.rglob("*")):
        if path.is_file() and path.name != "dev-secrets.json":
            logs[str(path.relative_to(data_dir))] = path.read_bytes().decode("latin-1")
    found = [
        f"{what} in {where}"
        for what, secret in plaintext.items()
        for where, text in logs.items()
        if any(form in text for form in encodings(secret))
    ]
    assert found == [], "plaintext credentials at rest or in logs:\n  " + "\n  ".join(found)
    # The scan looks where the secrets are: their ciphertexts are in the files it read.
    with closing(sqlite3.connect(data_dir / "d1" / "sam.sqlite")) as db:
        sealed = [bytes(row[0]) for row in db.execute("SELECT ciphertext FROM credentials")]
    assert len(sealed) == 2
    assert all(any(c.decode("latin-1") in text for text in logs.values()) for c in sealed)
    # A torn-down node's workspace containers go with it, as they would with a VM.
    assert containers == [], f"node {node_id}'s containers outlived it: {containers}"


def encodings(secret: str) -> list[str]:
    """The forms a secret could be written in: as is, base64 (both alphabets), hex."""
    raw = secret.encode()
    return [
        secret,
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(),
    ]
