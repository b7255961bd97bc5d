"""Idle workspaces on the twin, in-process, on an injected clock (worker/workspaces/idle.py).

Covers: the heartbeat's activity recorded for the reporting node's own workspaces only (a
report naming another node's workspace changes nothing); which workspaces the sweep
counts as idle as the clock moves (since the last use, else since ready; never while an
agent prompts or someone watches; never a flagged one); the reason text; the sam/wip/
branch named after the idle period; a warm node holding a workspace flagged with unsaved
work is kept through any number of warm windows (alarm and cron) and torn down once its
owner deleted that workspace, with a VM and DNS record on the loopback Hetzner and
Cloudflare too (none deleted before, none left after); the saved branch told once in the
workspace's live chats only. The real agent's side is in tests/agent/test_activity.py, the
whole path through the edge in test_idle_e2e.py.
"""

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.durable_objects.project_support import add_project, new_chat_id
from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.hetzner import FakeHetzner
from tests.worker.node_support import (
    WARM_SECONDS,
    add_node,
    add_user,
    advance,
    build_runtime,
    hetzner_node,
)
from twin import env as local_env
from twin import upstream
from twin.clock import ManualClock
from wire.callbacks import WorkspaceActivity
from worker.chats import workspace_events
from worker.db import iso
from worker.deployment import Deployment
from worker.nodes import pool as node_pool
from worker.nodes import service as nodes
from worker.nodes import sweeps as node_sweeps
from worker.projects import chat_data
from worker.workspaces import idle, store
from worker.workspaces.model import Workspace

IDLE_SECONDS = 1800.0


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[local_env.Runtime]:
    built = build_runtime(
        tmp_path / ".sam", ManualClock(), {"SAM_IDLE_TIMEOUT_SECONDS": str(IDLE_SECONDS)}
    )
    built.alarms.start()
    yield built
    await built.alarms.stop()
    built.close()
    await upstream.close()


@pytest.fixture
def clock(runtime: local_env.Runtime) -> ManualClock:
    return runtime.alarms.clock  # type: ignore[return-value]


@pytest.fixture
def deployment(runtime: local_env.Runtime, clock: ManualClock) -> Deployment:
    return Deployment.of(runtime.env, clock)


async def running_workspace(
    deployment: Deployment, user: str, node: str, suffix: str, **fields: Any
) -> Workspace:
    workspace_id = "w" + suffix.rjust(32, "0")
    await store.insert(
        deployment, workspace_id, user, suffix, "https://e.com/r.git", None, "local", None
    )
    ready = iso(deployment.now())
    await store.update(
        deployment, workspace_id, node_id=node, status="running", ready_at=ready, **fields
    )
    found = await store.find(deployment, workspace_id)
    assert found is not None
    return found


async def idle_ids(deployment: Deployment) -> set[str]:
    return {w.id for w in await idle.idle_workspaces(deployment)}


async def test_activity_is_recorded_for_the_reporting_nodes_workspaces_only(
    deployment: Deployment, clock: ManualClock
) -> None:
    env = deployment.env
    user = await add_user(env, "ivy")
    node, other = await add_node(env, user), await add_node(env, user)
    used = await running_workspace(deployment, user, node, "1")
    watched = await running_workspace(deployment, user, node, "2")
    foreign = await running_workspace(deployment, user, other, "3")
    clock.advance(100)
    await idle.record_activity(
        deployment,
        node,
        [
            WorkspaceActivity(id=used.id, idle_seconds=40),
            WorkspaceActivity(id=watched.id, idle_seconds=None, viewers=1),
            # Not this node's: a node cannot keep another's workspace alive.
            WorkspaceActivity(id=foreign.id, agent_busy=True, idle_seconds=0),
        ],
    )
    now = clock.now()
    after = {w.id: w for w in await store.where(deployment, "1 = 1")}
    assert after[used.id].last_active_at == iso(now - 40) and not after[used.id].in_use
    assert after[watched.id].last_active_at == iso(now) and after[watched.id].in_use
    assert after[foreign.id].last_active_at is None and not after[foreign.id].in_use
    # An older report never moves the last use back.
    await idle.record_activity(deployment, node, [WorkspaceActivity(id=used.id, idle_seconds=90)])
    assert (await store.find(deployment, used.id)).last_active_at == iso(now - 40)  # type: ignore[union-attr]


async def test_the_sweep_counts_a_workspace_idle_only_after_the_timeout_unused(
    deployment: Deployment, clock: ManualClock
) -> None:
    env = deployment.env
    user = await add_user(env, "ivy")
    node = await add_node(env, user)
    never_used = await running_workspace(deployment, user, node, "a")
    typed_in = await running_workspace(deployment, user, node, "b")
    prompting = await running_workspace(deployment, user, node, "c")
    flagged = await running_workspace(deployment, user, node, "d", needs_attention="unsaved")
    clock.advance(IDLE_SECONDS / 2)
    await idle.record_activity(
        deployment,
        node,
        [
            WorkspaceActivity(id=typed_in.id, idle_seconds=0),
            WorkspaceActivity(id=prompting.id, agent_busy=True),
        ],
    )
    assert await idle_ids(deployment) == set()
    # The timeout after ready: the one never used is idle; input half-way gave the other
    # a new half hour; a prompting agent is busy however long it is silent.
    clock.advance(IDLE_SECONDS / 2 + 1)
    assert await idle_ids(deployment) == {never_used.id}
    clock.advance(IDLE_SECONDS)
    assert await idle_ids(deployment) == {never_used.id, typed_in.id}
    assert prompting.id not in await idle_ids(deployment)
    assert flagged.id not in await idle_ids(deployment)
    # Its turn over (not busy, no viewer at the next beat): idle from its last frame on.
    await idle.record_activity(
        deployment, node, [WorkspaceActivity(id=prompting.id, idle_seconds=5)]
    )
    assert prompting.id not in await idle_ids(deployment)
    clock.advance(IDLE_SECONDS)
    assert prompting.id in await idle_ids(deployment)


async def test_a_viewer_coming_back_clears_the_flag(
    deployment: Deployment, clock: ManualClock
) -> None:
    env = deployment.env
    user = await add_user(env, "ivy")
    node = await add_node(env, user)
    flagged = await running_workspace(deployment, user, node, "e", needs_attention="unsaved")
    await idle.record_activity(deployment, node, [WorkspaceActivity(id=flagged.id, viewers=0)])
    assert (await store.find(deployment, flagged.id)).needs_attention == "unsaved"  # type: ignore[union-attr]
    await idle.record_activity(deployment, node, [WorkspaceActivity(id=flagged.id, viewers=2)])
    assert (await store.find(deployment, flagged.id)).needs_attention is None  # type: ignore[union-attr]


async def test_reason_and_wip_branch_name_the_idle_period(
    deployment: Deployment, clock: ManualClock
) -> None:
    assert idle.idle_reason(1800) == "stopped after 30 min without terminal or agent activity"
    assert idle.idle_reason(45) == "stopped after 45 s without terminal or agent activity"
    env = deployment.env
    user = await add_user(env, "ivy")
    node = await add_node(env, user)
    workspace = await running_workspace(
        deployment, user, node, "f", last_active_at="2026-12-05T00:30:01.250Z"
    )
    assert idle.wip_branch(workspace) == f"sam/wip/{workspace.id}-20261205T003001Z"


async def test_a_warm_node_holding_unsaved_work_is_never_torn_down_automatically(
    deployment: Deployment, runtime: local_env.Runtime, clock: ManualClock
) -> None:
    env = deployment.env
    user = await add_user(env, "ivy")
    node = await add_node(env, user)
    kept = await running_workspace(deployment, user, node, "9", needs_attention="unsaved")
    assert await node_pool.claim(deployment, node, kept.id)
    # Its owner stopped it (files kept, the flag too): the node goes warm...
    await store.update(deployment, kept.id, status="stopped")
    assert (await node_pool.release(deployment, node, kept.id))["state"] == "warm"
    # ...but neither the warm window's alarm nor cron's safety net tears it down.
    for _ in range(3):
        await advance(runtime, WARM_SECONDS + 1)
        assert await nodes.find_node(deployment, node) is not None
        assert (await node_pool.lifecycle(deployment, node))["state"] == "warm"
    clock.advance(WARM_SECONDS * 2)
    assert await node_sweeps.sweep_warm(deployment) == 0
    assert await nodes.find_node(deployment, node) is not None
    # The owner decided (deleted it): the next window ends the node.
    await store.remove(deployment, kept.id)
    await advance(runtime, WARM_SECONDS + 1)
    assert await nodes.find_node(deployment, node) is None
    assert (await node_pool.lifecycle(deployment, node))["torn_down"]


async def test_the_saved_branch_is_told_once_in_the_workspaces_live_chats(
    deployment: Deployment,
) -> None:
    env = deployment.env
    user = await add_user(env, "ivy")
    node = await add_node(env, user)
    workspace = await running_workspace(deployment, user, node, "c4a7")
    project = await add_project(deployment, user)
    linked, elsewhere = new_chat_id(), new_chat_id()
    for chat in (linked, elsewhere):
        await chat_data.create_chat(deployment, project, chat, user, "topic")
    await chat_data.link(deployment, project, linked, workspace.id, "as-1", "run-1")
    detail = "SAM saved its unsaved work to the branch sam/wip/x and stopped it."
    for _ in range(2):  # a sweep that runs again tells it once
        told = await workspace_events.chats_told(deployment, user, workspace.id, "idle", detail)
        assert told == 1
    frames = [
        m["frame"] for m in await chat_data.messages(deployment, project, linked, None, None, 50)
    ]
    runs = [f for f in frames if f["type"] == "run"]
    assert runs == [
        {"type": "run", "run_id": "run-1", "step": "idle", "status": "succeeded", "detail": detail}
    ]
    others = await chat_data.messages(deployment, project, elsewhere, None, None, 50)
    assert [m["frame"]["type"] for m in others if m["frame"]["type"] == "run"] == []


async def test_a_flagged_workspaces_vm_outlives_warm_windows_and_goes_once_it_is_deleted(
    cloud: local_env.Runtime, hetzner: FakeHetzner, cloudflare: FakeCloudflareDns
) -> None:
    """The same with a VM (the loopback Hetzner) and its DNS record: nothing is deleted
    while the unsaved work is there, and nothing is left once its owner deleted it."""
    deployment = Deployment.of(cloud.env, cloud.alarms.clock)
    user, token, node = await hetzner_node(deployment, hetzner)
    kept = await running_workspace(deployment, user, node.id, "5", needs_attention="unsaved")
    assert await node_pool.claim(deployment, node.id, kept.id)
    await store.update(deployment, kept.id, status="stopped")
    await node_pool.release(deployment, node.id, kept.id)
    for _ in range(2):
        await advance(cloud, WARM_SECONDS + 1)
        assert [s.id for s in hetzner.servers(token)] == [int(node.provider_server_id or 0)]
        assert cloudflare.records_named(node.agent_host) != []
    await store.remove(deployment, kept.id)
    await advance(cloud, WARM_SECONDS + 1)
    assert hetzner.servers(token) == []
    assert cloudflare.records_named(node.agent_host) == []
    assert await nodes.find_node(deployment, node.id) is None
