"""The NodeLifecycle Durable Object on the local twin, in-process, on an injected clock.

The runtime is the one `sam dev` builds from the real wrangler.toml (D1 with every
migration, KV, the NODE_LIFECYCLE namespace and its alarms), on a ManualClock, so warm
windows pass without sleeping. Covers: claims up to capacity, concurrent claims never
exceeding it, idempotent claims and releases, release → warm with an alarm, the alarm →
destroying + teardown (VM through the provider, row gone), a claim during the warm window
calling the teardown off, the owner's delete refused while workspaces are held, cron's
safety net when an alarm is lost, and a failed teardown retried by the alarm.
"""

import asyncio
from typing import Any

import pytest

from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.hetzner import FakeHetzner
from tests.worker.node_support import (
    CAPACITY,
    WARM_SECONDS,
    add_node,
    add_user,
    advance,
    hetzner_node,
    node_row,
)
from twin import env as local_env
from twin.clock import ManualClock
from worker.db import iso
from worker.deployment import Deployment
from worker.errors import SamError
from worker.http_errors import status_for
from worker.nodes import pool as node_pool
from worker.nodes import service as nodes
from worker.nodes import sweeps as node_sweeps


@pytest.fixture
async def node_id(env: Any) -> str:
    user = await add_user(env, "alice")
    return await add_node(env, user)


async def test_claims_are_admitted_up_to_capacity_and_are_idempotent(
    deployment: Deployment, env: Any, node_id: str, clock: ManualClock
) -> None:
    for n in range(CAPACITY):
        assert await node_pool.claim(deployment, node_id, f"w{n}")
    assert not await node_pool.claim(deployment, node_id, "one-too-many")
    assert await node_pool.claim(deployment, node_id, "w0")  # already held: still yes
    snapshot = await node_pool.lifecycle(deployment, node_id)
    assert snapshot["state"] == "active"
    assert sorted(snapshot["workspaces"]) == [f"w{n}" for n in range(CAPACITY)]
    assert snapshot["capacity"] == CAPACITY
    row = await node_row(env, node_id)
    assert (row["workspace_count"], row["warm_since"]) == (CAPACITY, None)


async def test_concurrent_claims_never_exceed_capacity(
    deployment: Deployment, env: Any, node_id: str
) -> None:
    attempts = 40
    results = await asyncio.gather(
        *(node_pool.claim(deployment, node_id, f"w{n}") for n in range(attempts))
    )
    assert sum(results) == CAPACITY
    snapshot = await node_pool.lifecycle(deployment, node_id)
    admitted = {f"w{n}" for n, ok in enumerate(results) if ok}
    assert set(snapshot["workspaces"]) == admitted
    assert (await node_row(env, node_id))["workspace_count"] == CAPACITY


async def test_concurrent_claims_and_releases_keep_count_and_mirror_consistent(
    deployment: Deployment, env: Any, node_id: str
) -> None:
    await asyncio.gather(*(node_pool.claim(deployment, node_id, f"w{n}") for n in range(CAPACITY)))
    # Release everything while as many newcomers race for the freed places.
    await asyncio.gather(
        *(node_pool.release(deployment, node_id, f"w{n}") for n in range(CAPACITY)),
        *(node_pool.claim(deployment, node_id, f"new{n}") for n in range(CAPACITY * 3)),
    )
    snapshot = await node_pool.lifecycle(deployment, node_id)
    assert len(snapshot["workspaces"]) <= CAPACITY
    assert not any(w.startswith("w") for w in snapshot["workspaces"])
    row = await node_row(env, node_id)
    assert row["workspace_count"] == len(snapshot["workspaces"])
    assert row["lifecycle_seq"] == snapshot["seq"]


async def test_the_last_release_starts_the_warm_window_with_an_alarm(
    deployment: Deployment, env: Any, node_id: str, runtime: local_env.Runtime, clock: ManualClock
) -> None:
    await node_pool.claim(deployment, node_id, "a")
    await node_pool.claim(deployment, node_id, "b")
    first = await node_pool.release(deployment, node_id, "a")
    assert first["state"] == "active" and first["workspaces"] == ["b"]
    warm = await node_pool.release(deployment, node_id, "b")
    assert warm["state"] == "warm"
    assert warm["warm_until"] == pytest.approx(clock.now() + WARM_SECONDS)
    again = await node_pool.release(deployment, node_id, "b")  # repeated: no change
    assert again["seq"] == warm["seq"] and again["warm_until"] == warm["warm_until"]
    row = await node_row(env, node_id)
    assert row["warm_since"] is not None and row["workspace_count"] == 0
    # Just before the window ends nothing happens.
    await advance(runtime, WARM_SECONDS - 1)
    assert (await node_pool.lifecycle(deployment, node_id))["state"] == "warm"
    assert await nodes.find_node(deployment, node_id) is not None


async def test_the_warm_alarm_destroys_the_node_and_tears_it_down(
    deployment: Deployment, env: Any, node_id: str, runtime: local_env.Runtime, clock: ManualClock
) -> None:
    await node_pool.claim(deployment, node_id, "a")
    await node_pool.release(deployment, node_id, "a")
    await advance(runtime, WARM_SECONDS + 1)
    snapshot = await node_pool.lifecycle(deployment, node_id)
    assert snapshot["state"] == "destroying" and snapshot["torn_down"]
    assert await nodes.find_node(deployment, node_id) is None
    # Destroying is final: the node takes no more workspaces.
    assert not await node_pool.claim(deployment, node_id, "late")


async def test_a_claim_during_the_warm_window_calls_the_teardown_off(
    deployment: Deployment, env: Any, node_id: str, runtime: local_env.Runtime, clock: ManualClock
) -> None:
    await node_pool.claim(deployment, node_id, "a")
    await node_pool.release(deployment, node_id, "a")
    await advance(runtime, WARM_SECONDS / 2)
    assert await node_pool.claim(deployment, node_id, "b")
    snapshot = await node_pool.lifecycle(deployment, node_id)
    assert snapshot["state"] == "active" and snapshot["warm_until"] is None
    assert (await node_row(env, node_id))["warm_since"] is None
    await advance(runtime, WARM_SECONDS * 3)
    assert (await node_pool.lifecycle(deployment, node_id))["state"] == "active"
    assert await nodes.find_node(deployment, node_id) is not None
    # Released again: a fresh window, counted from now.
    await node_pool.release(deployment, node_id, "b")
    await advance(runtime, WARM_SECONDS - 1)
    assert await nodes.find_node(deployment, node_id) is not None
    await advance(runtime, 2)
    assert await nodes.find_node(deployment, node_id) is None


async def test_the_owner_cannot_delete_a_node_holding_workspaces(
    deployment: Deployment, env: Any, node_id: str, clock: ManualClock
) -> None:
    user = (await node_row(env, node_id))["user_id"]
    await node_pool.claim(deployment, node_id, "a")
    with pytest.raises(SamError) as refused:
        await nodes.delete_node(deployment, user, node_id)
    assert (status_for(refused.value), refused.value.code) == (409, "node_busy")
    assert (await node_pool.lifecycle(deployment, node_id))["state"] == "active"
    await node_pool.release(deployment, node_id, "a")
    await nodes.delete_node(deployment, user, node_id)
    assert await nodes.find_node(deployment, node_id) is None
    snapshot = await node_pool.lifecycle(deployment, node_id)
    assert snapshot["state"] == "destroying" and snapshot["torn_down"]


async def test_cron_tears_down_a_warm_node_whose_alarm_was_lost(
    deployment: Deployment, env: Any, node_id: str, runtime: local_env.Runtime, clock: ManualClock
) -> None:
    await node_pool.claim(deployment, node_id, "a")
    await node_pool.release(deployment, node_id, "a")
    await runtime.alarms.stop()  # as if the alarm never fired
    clock.advance(WARM_SECONDS / 2)
    assert await node_sweeps.sweep_warm(deployment) == 0  # not yet due
    assert await nodes.find_node(deployment, node_id) is not None
    clock.advance(WARM_SECONDS)
    assert await node_sweeps.sweep_warm(deployment) == 1
    assert await nodes.find_node(deployment, node_id) is None
    assert await node_sweeps.sweep_warm(deployment) == 0  # idempotent


async def test_nodes_of_several_owners_never_share_a_lifecycle(
    deployment: Deployment, env: Any, clock: ManualClock
) -> None:
    alice, bob = await add_user(env, "alice"), await add_user(env, "bob")
    a, b = await add_node(env, alice), await add_node(env, bob)
    for n in range(CAPACITY):
        assert await node_pool.claim(deployment, a, f"w{n}")
    assert await node_pool.claim(deployment, b, "w0")
    assert (await node_pool.lifecycle(deployment, b))["workspaces"] == ["w0"]


async def test_claim_any_prefers_warm_then_busiest_and_skips_others_and_unhealthy(
    deployment: Deployment, env: Any, clock: ManualClock
) -> None:
    alice, bob = await add_user(env, "alice"), await add_user(env, "bob")
    beat = iso(clock.now())
    running = {"status": "running", "last_heartbeat_at": beat, "health": "healthy"}
    busy = await add_node(env, alice, **running)
    idle = await add_node(env, alice, **running)
    warm = await add_node(env, alice, **running)
    stale = await add_node(env, alice, **{**running, "last_heartbeat_at": iso(clock.now() - 3600)})
    creating = await add_node(env, alice, status="creating")
    errored = await add_node(env, alice, status="error")
    bobs = await add_node(env, bob, **running)
    for node, holders in [(busy, ["x1", "x2"]), (warm, ["y"]), (bobs, ["z"])]:
        for holder in holders:
            assert await node_pool.claim(deployment, node, holder)
    await node_pool.release(deployment, warm, "y")
    await node_pool.release(deployment, bobs, "z")

    async def placed(workspace: str) -> str | None:
        node = await node_pool.claim_any(deployment, alice, workspace)
        return None if node is None else node.id

    assert await placed("w1") == warm  # warm first: its teardown is called off
    assert (await node_pool.lifecycle(deployment, warm))["state"] == "active"
    assert await placed("w2") == busy  # then the busiest with room (2 of 3)
    assert await placed("w3") == warm  # busy is full; warm holds 1, idle 0
    assert await placed("w4") == warm
    assert [await placed(f"i{n}") for n in range(CAPACITY)] == [idle] * CAPACITY
    assert [await placed(f"c{n}") for n in range(CAPACITY)] == [creating] * CAPACITY
    assert await placed("none-left") is None
    # Never another user's node, a stale one or one in error.
    for node in (stale, errored, bobs):
        assert (await node_pool.lifecycle(deployment, node))["workspaces"] == []


# --- teardown of a real (fake Hetzner) VM and its DNS record ----------------------------------


async def test_the_warm_alarm_deletes_the_vm_and_its_dns_record(
    cloud: local_env.Runtime, hetzner: FakeHetzner, cloudflare: FakeCloudflareDns
) -> None:
    env, clock = cloud.env, cloud.alarms.clock
    deployment = Deployment.of(env, clock)
    _, token, node = await hetzner_node(deployment, hetzner)
    assert node.status == "creating" and node.provider_server_id and node.dns_record_id
    assert [s.id for s in hetzner.servers(token)] == [int(node.provider_server_id)]
    assert [r["content"] for r in cloudflare.records_named(node.agent_host)] == [node.ip_address]

    assert await node_pool.claim(deployment, node.id, "w")
    await node_pool.release(deployment, node.id, "w")
    await advance(cloud, WARM_SECONDS + 1)

    snapshot = await node_pool.lifecycle(deployment, node.id)
    assert snapshot["state"] == "destroying" and snapshot["torn_down"]
    assert hetzner.servers(token) == []
    deletes = hetzner.calls(f"/v1/servers/{node.provider_server_id}", "DELETE")
    assert [call.status for call in deletes] == [200]
    assert cloudflare.records_named(node.agent_host) == []
    assert await nodes.find_node(deployment, node.id) is None


async def test_a_failed_teardown_is_finished_later_and_leaks_nothing(
    cloud: local_env.Runtime, hetzner: FakeHetzner, cloudflare: FakeCloudflareDns
) -> None:
    env, clock = cloud.env, cloud.alarms.clock
    deployment = Deployment.of(env, clock)
    _, token, node = await hetzner_node(deployment, hetzner)
    assert await node_pool.claim(deployment, node.id, "w")
    await node_pool.release(deployment, node.id, "w")
    # Hetzner refuses the delete once (not retryable), so the alarm's teardown fails.
    hetzner.fail_next("DELETE", f"/v1/servers/{node.provider_server_id}", 403, "forbidden")
    await advance(cloud, WARM_SECONDS + 1)
    snapshot = await node_pool.lifecycle(deployment, node.id)
    assert snapshot["state"] == "destroying" and not snapshot["torn_down"]
    assert len(hetzner.servers(token)) == 1
    assert (await node_row(env, node.id))["status"] == "stopping"
    assert not await node_pool.claim(deployment, node.id, "late")
    # The next try (the object's retry alarm, or cron's sweep as here) finishes it.
    again = await node_pool.expire(deployment, node.id)
    assert again["torn_down"]
    assert hetzner.servers(token) == []
    assert cloudflare.records_named(node.agent_host) == []
    assert await nodes.find_node(deployment, node.id) is None


async def test_the_owners_delete_takes_vm_and_record_and_a_stranger_cannot(
    cloud: local_env.Runtime, hetzner: FakeHetzner, cloudflare: FakeCloudflareDns
) -> None:
    env, clock = cloud.env, cloud.alarms.clock
    deployment = Deployment.of(env, clock)
    user, token, node = await hetzner_node(deployment, hetzner)
    stranger = await add_user(env, "mallory")
    with pytest.raises(nodes.NodeNotFound):
        await nodes.delete_node(deployment, stranger, node.id)
    assert len(hetzner.servers(token)) == 1
    await nodes.delete_node(deployment, user, node.id)
    assert hetzner.servers(token) == []
    assert cloudflare.records_named(node.agent_host) == []
    assert await nodes.find_node(deployment, node.id) is None
