"""Cron's node jobs (worker/nodes/sweeps.py) in-process, on the real D1/KV/DO twin, with
the loopback Hetzner and Cloudflare DNS APIs and an injected clock.

Covers: a node stuck creating past the provisioning timeout → error with its VM and DNS
record deleted (and one that came up is left alone); health judged into D1; a release
that failed is finished by a later run; orphan VMs (SAM's labels, unknown to D1) deleted
in every account while known nodes and the user's own servers are never touched.
(The warm-window safety net is in test_node_lifecycle.py; cron through the real edge, in
test_nodes.py.)
"""

from typing import Any

import httpx
import pytest

from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.hetzner import FakeHetzner
from tests.worker.node_support import add_node, add_user, hetzner_node, node_row
from twin import env as local_env
from twin.clock import ManualClock
from worker.config import DEFAULT_NODE_HEARTBEAT_SECONDS, DEFAULT_NODE_PROVISIONING_TIMEOUT_SECONDS
from worker.db import iso
from worker.deployment import Deployment
from worker.nodes import service as nodes
from worker.nodes import sweeps as node_sweeps

TIMEOUT = DEFAULT_NODE_PROVISIONING_TIMEOUT_SECONDS
INTERVAL = DEFAULT_NODE_HEARTBEAT_SECONDS


@pytest.fixture
def env(cloud: local_env.Runtime) -> Any:
    return cloud.env


def at(env: Any, moment: float) -> Deployment:
    """`env` on a clock stopped at `moment`: each call below happens at a time it names."""
    return Deployment.of(env, ManualClock(moment))


def hetzner_server(hetzner: FakeHetzner, token: str, name: str, labels: dict[str, str]) -> int:
    """A server made straight in the user's Hetzner project (not through SAM)."""
    reply = httpx.post(
        f"{hetzner.url}/v1/servers",
        headers={"authorization": f"Bearer {token}"},
        json={
            "name": name,
            "server_type": "cx22",
            "image": "debian-12",
            "location": "fsn1",
            "labels": labels,
        },
    )
    assert reply.status_code == 201, reply.text
    return reply.json()["server"]["id"]


async def test_a_node_stuck_creating_times_out_into_error_and_its_vm_goes(
    env: Any, hetzner: FakeHetzner, cloudflare: FakeCloudflareDns
) -> None:
    start = 1_800_000_000.0
    _, token, stuck = await hetzner_node(at(env, start), hetzner)
    _, _, came_up = await hetzner_node(at(env, start), hetzner, login="dave")
    await nodes.mark_ready(at(env, start + 60), came_up.id, 8080, "0.1.0")

    assert await node_sweeps.time_out_provisioning(at(env, start + TIMEOUT - 1)) == 0
    assert (await node_row(env, stuck.id))["status"] == "creating"
    assert await node_sweeps.time_out_provisioning(at(env, start + TIMEOUT + 1)) == 1

    row = await node_row(env, stuck.id)
    assert row["status"] == "error"
    assert "did not call back within 30 minutes" in row["error_message"]
    assert row["provider_server_id"] is None and row["dns_record_id"] is None
    assert hetzner.servers(token) == []
    assert cloudflare.records_named(stuck.agent_host) == []
    assert (await node_row(env, came_up.id))["status"] == "running"
    assert await node_sweeps.time_out_provisioning(at(env, start + TIMEOUT + 2)) == 0


async def test_a_release_that_failed_is_finished_by_a_later_run(
    env: Any, hetzner: FakeHetzner, cloudflare: FakeCloudflareDns
) -> None:
    start = 1_800_000_000.0
    _, token, stuck = await hetzner_node(at(env, start), hetzner)
    hetzner.fail_next("DELETE", f"/v1/servers/{stuck.provider_server_id}", 403, "forbidden")
    await node_sweeps.time_out_provisioning(at(env, start + TIMEOUT + 1))
    row = await node_row(env, stuck.id)
    assert row["status"] == "error" and row["provider_server_id"] == stuck.provider_server_id
    assert len(hetzner.servers(token)) == 1

    assert await node_sweeps.finish_teardowns(at(env, start + TIMEOUT + 300)) == 1
    assert hetzner.servers(token) == []
    assert cloudflare.records_named(stuck.agent_host) == []
    assert (await node_row(env, stuck.id))["provider_server_id"] is None
    assert await node_sweeps.finish_teardowns(at(env, start + TIMEOUT + 600)) == 0


async def test_health_is_judged_into_d1_from_the_last_beat(env: Any) -> None:
    user = await add_user(env, "erin")
    beat = 1_800_000_000.0
    running = await add_node(env, user, last_heartbeat_at=iso(beat), health="healthy")
    creating = await add_node(env, user, status="creating")
    assert await node_sweeps.judge_health(at(env, beat + INTERVAL)) == 0
    assert await node_sweeps.judge_health(at(env, beat + 2 * INTERVAL)) == 1
    assert (await node_row(env, running))["health"] == "stale"
    assert await node_sweeps.judge_health(at(env, beat + 5 * INTERVAL)) == 1
    assert (await node_row(env, running))["health"] == "unhealthy"
    assert await node_sweeps.judge_health(at(env, beat + 6 * INTERVAL)) == 0
    await nodes.record_heartbeat(at(env, beat + 6 * INTERVAL), running, {}, "0.1.0")
    assert (await node_row(env, running))["health"] == "healthy"
    assert (await node_row(env, creating))["health"] is None


async def test_orphan_vms_are_deleted_and_nothing_else_is(
    env: Any, hetzner: FakeHetzner, cloudflare: FakeCloudflareDns
) -> None:
    start = 1_800_000_000.0
    carol, carols_token, known = await hetzner_node(at(env, start), hetzner)
    dave, daves_token, _ = await hetzner_node(at(env, start), hetzner, login="dave")
    sam_labels = {"managed-by": "sam", "sam-node": "n00000000deadbeef", "sam-user": carol}
    orphan = hetzner_server(hetzner, carols_token, "sam-orphan", sam_labels)
    daves_orphan = hetzner_server(
        hetzner, daves_token, "sam-orphan-2", {**sam_labels, "sam-user": dave}
    )
    own = hetzner_server(hetzner, carols_token, "carols-db", {"team": "data"})
    daves_nodes = {s.id for s in hetzner.servers(daves_token)} - {daves_orphan}

    assert await node_sweeps.delete_orphans(Deployment.of(env)) == 2
    carols = {s.id for s in hetzner.servers(carols_token)}
    assert carols == {int(known.provider_server_id), own}
    assert orphan not in carols
    assert {s.id for s in hetzner.servers(daves_token)} == daves_nodes
    assert await node_sweeps.delete_orphans(Deployment.of(env)) == 0
    assert await nodes.find_node(Deployment.of(env), known.id) is not None


async def test_one_account_failing_does_not_stop_the_orphan_sweep(
    env: Any, hetzner: FakeHetzner
) -> None:
    start = 1_800_000_000.0
    carol, carols_token, _ = await hetzner_node(at(env, start), hetzner)
    labels = {"managed-by": "sam", "sam-node": "n00000000feedface", "sam-user": carol}
    orphan = hetzner_server(hetzner, carols_token, "sam-orphan-3", labels)
    # Another user whose token Hetzner no longer accepts: a stored credential that fails.
    _, mallorys_token, mallorys_node = await hetzner_node(at(env, start), hetzner, login="mallory")
    hetzner.projects.pop(mallorys_token)
    calls_before = len(hetzner.calls("/v1/servers", "GET"))
    assert await node_sweeps.delete_orphans(Deployment.of(env)) == 1
    assert orphan not in {s.id for s in hetzner.servers(carols_token)}
    # Mallory's account was listed and refused (401), and her node was left as it was.
    sweep_lists = hetzner.calls("/v1/servers", "GET")[calls_before:]
    assert [call.status for call in sweep_lists if call.token == mallorys_token] == [401]
    assert await nodes.find_node(Deployment.of(env), mallorys_node.id) is not None
