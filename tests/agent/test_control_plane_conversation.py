"""The agent's conversation with the control plane, against the real edge (`sam dev`), no
double in between: a real `python -m agent` joins with its first heartbeat, keeps beating,
has its callback token renewed by the edge and uses the new one, and reports a workspace's
boot log and readiness through the edge's own callback routes. A token the edge refuses
leaves the node where it was.

The node rows are written straight into the edge's D1 file (as a provider would have
written them), and the tokens are minted with the edge's own key (tests/support/
edge_tokens.py), so that everything the agent says is answered by the real routes.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.repos import make_repo
from tests.support.agent import free_port
from tests.support.agent_tls import local_node_client
from tests.support.control_plane import INITIAL_CALLBACK_TOKEN, ControlPlaneDouble
from tests.support.edge import Edge, running_edge
from tests.support.edge_tokens import EdgeSigner
from tests.support.wait import wait_for
from tests.worker.edge.test_proxy import (
    Member,
    certify,
    database,
    insert_node,
    insert_workspace,
    sign_in,
)
from wire.version import VERSION
from worker.api.routes.nodes import RENEW_AFTER_SECONDS
from worker.auth import scoped_tokens
from worker.auth.scoped_tokens import Audience

ROOT = Path(__file__).resolve().parents[2]
HEARTBEAT_SECONDS = "0.5"
START_TIMEOUT_SECONDS = 30.0
BEAT_TIMEOUT_SECONDS = 30.0
READY_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0


@pytest.fixture
def edge(tmp_path: Path) -> Iterator[Edge]:
    with running_edge(tmp_path / ".sam") as running:
        yield running


@pytest.fixture
def signer(edge: Edge) -> Iterator[EdgeSigner]:
    minting = EdgeSigner(edge.data_dir, edge.domain)
    yield minting
    minting.close()


@pytest.fixture
def carol(edge: Edge) -> Member:
    return sign_in(edge, "carol")


def creating_node(edge: Edge, owner: Member, port: int) -> str:
    """A node row as a provider leaves it: creating, waiting for its agent."""
    node_id = insert_node(edge, owner.id, port)
    with closing(database(edge)) as db:
        db.execute("UPDATE nodes SET status = 'creating' WHERE id = ?", (node_id,))
        db.commit()
    return node_id


def as_owner(edge: Edge, owner: Member) -> httpx.Client:
    client = edge.client("app", timeout=30.0)
    client.headers.update(
        {"cookie": f"sam_session={owner.session}", "origin": f"http://{edge.host('app')}"}
    )
    return client


def shown(edge: Edge, owner: Member, path: str) -> dict[str, Any]:
    with as_owner(edge, owner) as client:
        answer = client.get(path)
    assert answer.status_code == 200, answer.text
    return answer.json()


@contextmanager
def agent_process(
    edge: Edge, node_id: str, port: int, token: str, state: Path
) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """`python -m agent` for `node_id` with `token` in its token file, talking to the edge
    by name (api.localhost) as a VM talks to api.{domain}, and serving TLS with a
    certificate from the edge's own CA as a local node does; yields it and its log."""
    state.mkdir(parents=True)
    token_file = state / "callback-token"
    token_file.write_text(token + "\n")
    token_file.chmod(0o600)
    log = state.parent / f"{state.name}.log"
    tls = certify(edge, node_id, state.parent / "tls")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SAM_")},
        "SAM_NODE_ID": node_id,
        "SAM_CONTROL_PLANE_URL": f"http://{edge.host('api')}",
        "SAM_AGENT_HOST": "127.0.0.1",
        "SAM_AGENT_PORT": str(port),
        "SAM_BACKEND": "host",
        "SAM_STATE_DIR": str(state),
        "SAM_CALLBACK_TOKEN_FILE": str(token_file),
        "SAM_TLS_CERT": str(tls.cert),
        "SAM_TLS_KEY": str(tls.key),
        "SAM_HEARTBEAT_SECONDS": HEARTBEAT_SECONDS,
        "PYTHONUNBUFFERED": "1",
    }
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "agent"], cwd=ROOT, env=env, stdout=output, stderr=output
        )
    try:
        wait_for(
            lambda: process.poll() is not None or _answers(edge, node_id, port),
            "the agent's /health",
            START_TIMEOUT_SECONDS,
        )
        assert process.poll() is None, log.read_text()
        yield process, log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _answers(edge: Edge, node_id: str, port: int) -> bool:
    try:
        with local_node_client(edge.data_dir, node_id, port, timeout=2.0) as agent:
            return agent.get("/health").status_code == 200
    except httpx.TransportError:
        return False


def later_beat(edge: Edge, owner: Member, node_id: str, after: str | None) -> str:
    """The node's last_heartbeat_at once it is later than `after`: a beat the edge took."""

    def beat() -> str | None:
        last = shown(edge, owner, f"/api/nodes/{node_id}")["last_heartbeat_at"]
        return last if last is not None and (after is None or last > after) else None

    return wait_for(beat, "a heartbeat the edge accepted", BEAT_TIMEOUT_SECONDS)


def test_the_agent_joins_with_its_first_heartbeat_and_keeps_beating(
    edge: Edge, signer: EdgeSigner, carol: Member, tmp_path: Path
) -> None:
    port = free_port()
    node_id = creating_node(edge, carol, port)
    token = asyncio.run(scoped_tokens.mint_node_token(signer.deployment, node_id)).token
    with agent_process(edge, node_id, port, token, tmp_path / "state") as (_, log):
        first = later_beat(edge, carol, node_id, None)
        node = shown(edge, carol, f"/api/nodes/{node_id}")
        assert (node["status"], node["health"]) == ("running", "healthy"), node
        assert (node["agent_port"], node["agent_version"]) == (port, VERSION)
        assert node["metrics"]["memory"]["total"] > 0 and node["metrics"]["disk"]["total"] > 0
        later_beat(edge, carol, node_id, first)
    assert token not in edge.log() and token not in log.read_text()


def test_a_token_past_half_its_life_is_renewed_and_the_agent_uses_the_new_one(
    edge: Edge, signer: EdgeSigner, carol: Member, tmp_path: Path
) -> None:
    port = free_port()
    node_id = creating_node(edge, carol, port)
    issued = int(time.time() - RENEW_AFTER_SECONDS - 60)
    claims = {
        **signer.claims(str(Audience.NODE), node=node_id),
        "iat": issued,
        "exp": issued + scoped_tokens.NODE_TOKEN_SECONDS,
    }
    old = asyncio.run(signer.sign(claims))
    token_file = tmp_path / "state" / "callback-token"
    with agent_process(edge, node_id, port, old, tmp_path / "state") as (_, log):
        renewed = wait_for(
            lambda: (text := token_file.read_text().strip()) != old and text,
            "the agent to persist the renewed token",
            BEAT_TIMEOUT_SECONDS,
        )
        verified = asyncio.run(
            scoped_tokens.verify(signer.deployment, renewed, Audience.NODE, node=node_id)
        )
        assert verified["iat"] > issued + RENEW_AFTER_SECONDS
        # Two more beats the edge took: had the agent kept the old token, each would have
        # been renewed again (and the file rewritten).
        after = later_beat(edge, carol, node_id, None)
        after = later_beat(edge, carol, node_id, after)
        later_beat(edge, carol, node_id, after)
        assert edge.log().count(f"node.token_renewed node_id={node_id}") == 1, edge.log()
        assert token_file.read_text().strip() == renewed
    assert renewed not in edge.log() and renewed not in log.read_text()


def test_a_token_for_another_node_is_refused_and_the_node_stays_creating(
    edge: Edge, signer: EdgeSigner, carol: Member, tmp_path: Path
) -> None:
    port = free_port()
    node_id = creating_node(edge, carol, port)
    other = asyncio.run(scoped_tokens.mint_node_token(signer.deployment, "n-someone-else")).token
    with agent_process(edge, node_id, port, other, tmp_path / "state") as (_, log):
        wait_for(
            lambda: "heartbeat.failed" in log.read_text(),
            "the agent to log its refused heartbeat",
            BEAT_TIMEOUT_SECONDS,
        )
        refused = next(line for line in log.read_text().splitlines() if "heartbeat.failed" in line)
        assert "403" in refused, refused
        node = shown(edge, carol, f"/api/nodes/{node_id}")
        assert (node["status"], node["last_heartbeat_at"]) == ("creating", None), node


def test_the_edge_dispatches_a_waiting_workspace_and_hears_its_boot_log_and_ready(
    edge: Edge, signer: EdgeSigner, carol: Member, tmp_path: Path
) -> None:
    port = free_port()
    node_id = creating_node(edge, carol, port)
    token = asyncio.run(scoped_tokens.mint_node_token(signer.deployment, node_id)).token
    repo = make_repo(tmp_path, "conversation", files={"README.md": "# hello\n"})
    # A workspace waiting for its node: the edge hands it over once the node joins.
    workspace_id = insert_workspace(edge, carol.id, node_id, status="creating", dispatched=False)
    with closing(database(edge)) as db:
        db.execute("UPDATE workspaces SET repository = ? WHERE id = ?", (str(repo), workspace_id))
        db.commit()
    with agent_process(edge, node_id, port, token, tmp_path / "state"):
        workspace = wait_for(
            lambda: (
                (w := shown(edge, carol, f"/api/workspaces/{workspace_id}"))["status"]
                in ("running", "error")
                and w
            ),
            "the workspace's ready callback",
            READY_TIMEOUT_SECONDS,
        )
        boot_log = shown(edge, carol, f"/api/workspaces/{workspace_id}/boot-log")
        assert workspace["status"] == "running", (workspace, boot_log)
    agent_steps = [entry["step"] for entry in boot_log["entries"] if entry["source"] == "agent"]
    assert agent_steps[0] == "clone" and agent_steps[-1] == "ready", boot_log
    assert any(entry["step"] == "dispatch" for entry in boot_log["entries"]), boot_log


BEAT = {
    "cpu_percent": 12.5,
    "memory": {"total": 8_000_000_000, "used": 2_000_000_000},
    "disk": {"total": 100_000_000_000, "used": 40_000_000_000},
    "active_workspaces": 0,
    "agent_version": VERSION,
}


def test_the_agent_tests_double_refuses_what_the_real_edge_refuses(
    edge: Edge, signer: EdgeSigner, carol: Member
) -> None:
    """The double in tests/support/control_plane.py stays for fault injection only: asked
    the same things, it must answer with the real routes' statuses."""
    node_id = insert_node(edge, carol.id, free_port())
    token = asyncio.run(scoped_tokens.mint_node_token(signer.deployment, node_id)).token
    cases = {
        "a good heartbeat": (f"/api/nodes/{node_id}/heartbeat", True, BEAT),
        "no token": (f"/api/nodes/{node_id}/heartbeat", False, BEAT),
        "a body of the wrong shape": (f"/api/nodes/{node_id}/heartbeat", True, {"cpu": 1}),
        "not JSON at all": (f"/api/nodes/{node_id}/heartbeat", True, "beat"),
        "another node's route": ("/api/nodes/n-someone-else/heartbeat", True, BEAT),
        "a callback that does not exist": (f"/api/nodes/{node_id}/reboot", True, {}),
    }
    with (
        ControlPlaneDouble(node_id=node_id) as double,
        edge.client("api") as real,
        httpx.Client(base_url=double.url) as doubled,
    ):
        for case, (path, authorized, body) in cases.items():
            answers = []
            for client, bearer in ((real, token), (doubled, INITIAL_CALLBACK_TOKEN)):
                headers = {"content-type": "application/json"}
                if authorized:
                    headers["authorization"] = f"Bearer {bearer}"
                answer = client.post(path, content=json.dumps(body), headers=headers)
                answers.append((answer.status_code, answer.json().get("error")))
            (real_status, _), (double_status, _) = answers
            assert real_status == double_status, (case, answers)
