"""The local provider and the edge's node launcher (devtools/local_nodes.py), with real agent
processes: POST /api/nodes {provider: local} starts an agent that exchanges its bootstrap
token and reports ready; delete stops it; stopping the edge stops every agent and starting
it again (even after kill -9) brings them back with fresh callback tokens.
"""

import asyncio
import json
import os
import signal
import stat
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from devtools.local_nodes import LocalNodes, local_nodes_ca, local_nodes_service
from tests.support.agent_tls import local_node_client
from tests.support.edge import Edge, running_edge, signed_in
from tests.support.wait import wait_for
from tests.worker.provider_support import Wanted, provider_deployment
from twin import upstream
from twin.http import Request
from worker.errors import SamError
from worker.http_errors import status_for
from worker.nodes.providers import provider_for
from worker.nodes.providers.base import NodeBoot

READY_TIMEOUT_SECONDS = 30.0
EXIT_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.1


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split()[2]
    except OSError:
        return False
    return state != "Z"


def node_file(edge_dir: Path, node_id: str) -> dict[str, Any]:
    return json.loads((edge_dir / "nodes" / node_id / "node.json").read_text())


def healthy(data_dir: Path, port: int, node_id: str) -> bool:
    """The agent answers /health over TLS, certified as its node by the edge's local CA."""
    try:
        with local_node_client(data_dir, node_id, port, timeout=2.0) as client:
            reply = client.get("/health")
    except httpx.TransportError:
        return False
    return reply.status_code == 200 and reply.json()["node_id"] == node_id


def running(client: httpx.Client, node_id: str) -> dict[str, Any] | None:
    shown = client.get(f"/api/nodes/{node_id}").json()
    return shown if shown["status"] == "running" else None


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / ".sam"
    # Whatever a failing test left: no agent outlives it.
    for path in (tmp_path / ".sam" / "nodes").glob("*/node.json"):
        pid = json.loads(path.read_text()).get("pid")
        if pid and alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_local_node_runs_a_real_agent_until_it_is_deleted(data_dir: Path) -> None:
    with running_edge(data_dir) as edge, closing(signed_in(edge, "alice")) as alice:
        created = alice.post("/api/nodes", json={"provider": "local"})
        assert created.status_code == 201, created.text
        node = created.json()
        port = node["agent_port"]
        assert node["agent_host"] == f"vm-{node['id']}.localhost"
        wait_for(
            lambda: healthy(data_dir, port, node["id"]),
            "the agent's /health",
            READY_TIMEOUT_SECONDS,
        )
        shown = wait_for(
            lambda: running(alice, node["id"]), "the ready callback", READY_TIMEOUT_SECONDS
        )
        assert shown["agent_port"] == port

        state = data_dir / "nodes" / node["id"] / "state"
        token_file = state / "callback-token"
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        tls_key = data_dir / "nodes" / node["id"] / "tls" / "key.pem"
        for private in (tls_key, data_dir / "local-ca" / "ca-key.pem"):
            assert stat.S_IMODE(private.stat().st_mode) == 0o600, private
        assert tls_key.read_text().splitlines()[1] not in edge.log()
        pid = node_file(data_dir, node["id"])["pid"]
        assert alive(pid)
        callback_token = token_file.read_text().strip()

        # Another user sees nothing of it and cannot delete it.
        with closing(signed_in(edge, "mallory")) as mallory:
            assert mallory.get(f"/api/nodes/{node['id']}").status_code == 404
            assert mallory.delete(f"/api/nodes/{node['id']}").status_code == 404
        assert alive(pid)

        assert alice.delete(f"/api/nodes/{node['id']}").status_code == 204
        wait_for(lambda: not alive(pid), "the agent to stop", EXIT_TIMEOUT_SECONDS)
        assert not (data_dir / "nodes" / node["id"]).exists()
        assert callback_token not in edge.log()


def test_the_edge_stops_its_agents_and_brings_them_back_after_a_restart(data_dir: Path) -> None:
    with running_edge(data_dir) as edge, closing(signed_in(edge, "alice")) as alice:
        node = alice.post("/api/nodes", json={"provider": "local"}).json()
        wait_for(lambda: running(alice, node["id"]), "the ready callback", READY_TIMEOUT_SECONDS)
        first = node_file(data_dir, node["id"])
        old_token = (data_dir / "nodes" / node["id"] / "state" / "callback-token").read_text()
    wait_for(lambda: not alive(first["pid"]), "the edge to stop its agent", EXIT_TIMEOUT_SECONDS)

    # A new edge, on another port: the node comes back and reports where it is.
    with running_edge(data_dir) as edge, closing(signed_in(edge, "alice")) as alice:
        again = wait_for(
            lambda: (n := node_file(data_dir, node["id"]))["pid"] != first["pid"] and n,
            "the agent to start again",
            READY_TIMEOUT_SECONDS,
        )
        assert again["control_plane_url"] == f"http://api.{edge.domain}"
        wait_for(
            lambda: healthy(data_dir, again["port"], node["id"]),
            "the restarted agent's /health",
            READY_TIMEOUT_SECONDS,
        )
        token = (data_dir / "nodes" / node["id"] / "state" / "callback-token").read_text()
        assert token != old_token, "a restarted node gets a fresh callback token"
        wait_for(
            lambda: alice.get(f"/api/nodes/{node['id']}").json()["agent_port"] == again["port"],
            "the ready callback of the restarted agent",
            READY_TIMEOUT_SECONDS,
        )
        assert alice.delete(f"/api/nodes/{node['id']}").status_code == 204
    assert not alive(again["pid"])


def test_after_a_kill_9_of_the_edge_the_orphaned_agent_is_replaced(data_dir: Path) -> None:
    with running_edge(data_dir) as edge, closing(signed_in(edge, "alice")) as alice:
        node = alice.post("/api/nodes", json={"provider": "local"}).json()
        wait_for(lambda: running(alice, node["id"]), "the ready callback", READY_TIMEOUT_SECONDS)
        orphan = node_file(data_dir, node["id"])["pid"]
        edge.process.kill()  # no shutdown code runs: the agent is left behind
        edge.process.wait()
    assert alive(orphan)
    with running_edge(data_dir) as edge, closing(signed_in(edge, "alice")) as alice:
        wait_for(lambda: not alive(orphan), "the orphan to be stopped", EXIT_TIMEOUT_SECONDS)
        fresh = wait_for(
            lambda: (n := node_file(data_dir, node["id"]))["pid"] != orphan and n,
            "a new agent",
            READY_TIMEOUT_SECONDS,
        )
        wait_for(
            lambda: healthy(data_dir, fresh["port"], node["id"]),
            "the new agent's /health",
            READY_TIMEOUT_SECONDS,
        )
        assert alice.delete(f"/api/nodes/{node['id']}").status_code == 204


# --- the launcher's own answers, and the provider off `sam dev` ----------------------------


async def call(launcher: LocalNodes, method: str, path: str, body: Any = None) -> Any:
    init: dict[str, Any] = {"method": method}
    if body is not None:
        init["body"] = body if isinstance(body, str) else json.dumps(body)
    reply = await launcher.fetch(Request(f"http://local-nodes{path}", **init))
    return reply.status, await reply.json()


async def test_the_launcher_refuses_bad_input_and_cleans_up_a_failed_start(
    tmp_path: Path,
) -> None:
    launcher = LocalNodes(tmp_path / "nodes", None, local_nodes_ca(tmp_path))
    good = {"node_id": "n1", "control_plane_url": "http://127.0.0.1:9", "bootstrap_token": "t"}
    for bad in (
        {**good, "node_id": "../escape"},
        {**good, "node_id": ""},
        {**good, "control_plane_url": "file:///etc/passwd"},
        {**good, "bootstrap_token": None},
        ["not", "an", "object"],
    ):
        status, answer = await call(launcher, "POST", "/nodes", bad)
        assert status == 400, (bad, answer)
    assert (await call(launcher, "POST", "/nodes", "{not json"))[0] == 400
    assert (await call(launcher, "PUT", "/nodes"))[0] == 404
    assert (await call(launcher, "DELETE", "/nodes/..%2F.."))[0] == 400
    assert await call(launcher, "DELETE", "/nodes/n404") == (
        200,
        {"node_id": "n404", "deleted": False},
    )

    # Nothing listens at the control plane URL: the exchange fails, nothing is left.
    status, answer = await call(launcher, "POST", "/nodes", good)
    assert status == 502 and "bootstrap" in answer["message"]
    assert not (tmp_path / "nodes" / "n1").exists()
    assert await call(launcher, "GET", "/nodes") == (200, {"nodes": []})
    await launcher.stop()
    await upstream.close()


async def test_off_sam_dev_the_local_provider_says_it_is_unavailable(tmp_path: Path) -> None:
    async with provider_deployment(tmp_path / ".sam", None, None) as deployment:
        provider = provider_for("local")
        with pytest.raises(SamError) as refused:
            provider.check_available(deployment)
        assert (status_for(refused.value), refused.value.code) == (
            400,
            "local_provider_unavailable",
        )
        with pytest.raises(SamError):
            boot = NodeBoot("n1", "http://api.localhost:8787", "t" * 43)
            await provider.create_server(deployment, Wanted("n1"), "u_1", boot)
    with pytest.raises(SamError) as unknown:
        provider_for("aws")
    assert unknown.value.code == "unknown_provider"


def test_the_launcher_lists_nodes_by_user_for_the_orphan_sweep(data_dir: Path) -> None:
    with running_edge(data_dir) as edge, closing(signed_in(edge, "alice")) as alice:
        node = alice.post("/api/nodes", json={"provider": "local"}).json()
        wait_for(lambda: running(alice, node["id"]), "the ready callback", READY_TIMEOUT_SECONDS)

        async def listed() -> tuple[list[Any], list[Any]]:
            async with provider_deployment(data_dir, None, None) as deployment:
                env = deployment.env
                env.LOCAL_NODES = local_nodes_service(env, data_dir)  # reads node.json
                mine = await provider_for("local").list_managed(deployment, node_user(edge, alice))
                others = await provider_for("local").list_managed(deployment, "u_someone_else")
                return mine, others

        mine, others = asyncio.run(listed())
        assert [s.node_id for s in mine] == [node["id"]] and others == []
        assert alice.delete(f"/api/nodes/{node['id']}").status_code == 204


def node_user(edge: Edge, client: httpx.Client) -> str:
    return client.get("/api/auth/me").json()["id"]
