"""Heartbeats reach the control plane with real metrics; a rotated callback token is
persisted atomically and used from the next call on."""

import asyncio
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import psutil
import pytest

from agent.config import AgentConfig
from agent.control_plane import ControlPlane, new_session, read_token_file, write_token_file
from agent.heartbeat import Heartbeat, metrics
from tests.support.agent import AgentProcess
from tests.support.control_plane import (
    INITIAL_CALLBACK_TOKEN,
    WAIT_TIMEOUT_SECONDS,
    ControlPlaneDouble,
)
from wire.version import VERSION

INTERVAL_SECONDS = 7.0  # never slept: the loop's sleep is injected


@pytest.fixture
def config(control_plane: ControlPlaneDouble, tmp_path: Path) -> AgentConfig:
    token_file = tmp_path / "state" / "callback-token"
    write_token_file(token_file, INITIAL_CALLBACK_TOKEN)
    return AgentConfig.from_environ(
        {
            **control_plane.agent_env(),
            "SAM_STATE_DIR": str(tmp_path / "state"),
            "SAM_CALLBACK_TOKEN_FILE": str(token_file),
        }
    )


@pytest.fixture
async def client(config: AgentConfig) -> AsyncIterator[ControlPlane]:
    async with new_session() as session:
        cp = ControlPlane(config, session, retry_base_seconds=0.01)
        yield cp
        await cp.close()


def heartbeat(client: ControlPlane, config: AgentConfig, sleep=asyncio.sleep) -> Heartbeat:
    return Heartbeat(client, lambda: 2, INTERVAL_SECONDS, config.state_dir, sleep=sleep)


async def test_a_beat_carries_real_metrics(client, config, control_plane) -> None:
    assert await heartbeat(client, config).beat()
    [call] = await control_plane.wait_for_async("heartbeat")
    assert call.path == f"/api/nodes/{control_plane.node_id}/heartbeat"
    assert call.token == INITIAL_CALLBACK_TOKEN
    body = call.body
    assert set(body) == {
        "cpu_percent",
        "memory",
        "disk",
        "active_workspaces",
        "agent_version",
        "workspaces",
    }
    assert body["workspaces"] == []  # this heartbeat was given no activity to report
    assert 0.0 <= body["cpu_percent"] <= 100.0 * (psutil.cpu_count() or 1)
    assert body["memory"]["total"] == psutil.virtual_memory().total
    assert 0 < body["memory"]["used"] < body["memory"]["total"]
    disk = psutil.disk_usage(str(config.state_dir))
    assert body["disk"]["total"] == disk.total
    assert 0 < body["disk"]["used"] <= disk.total
    assert (body["active_workspaces"], body["agent_version"]) == (2, VERSION)


async def test_a_rotated_token_is_persisted_and_used_next(client, config, control_plane):
    beat = heartbeat(client, config)
    new_token = control_plane.queue_callback_token()
    assert await beat.beat()
    assert client.token == new_token
    assert read_token_file(config.callback_token_file) == new_token
    assert stat.S_IMODE(config.callback_token_file.stat().st_mode) == 0o600
    assert await beat.beat()
    first, second = await control_plane.wait_for_async("heartbeat", count=2)
    assert (first.token, second.token) == (INITIAL_CALLBACK_TOKEN, new_token)
    # Callbacks pick the new token up too.
    await client.workspace_ready("ws-1", {"container_id": "c"})
    [ready] = await control_plane.wait_for_async("ready")
    assert (ready.token, ready.status) == (new_token, 200)


async def test_failures_are_logged_and_the_loop_goes_on(client, config, control_plane, caplog):
    slept: list[float] = []
    third_beat_done = asyncio.Event()

    async def sleep(seconds: float) -> None:
        # The loop sleeps after each beat, so the third call means three beats are over
        # (replies handled, counters updated); it parks there until the test stops it.
        slept.append(seconds)
        if len(slept) == 3:
            third_beat_done.set()
            await asyncio.Event().wait()

    control_plane.fail_next("heartbeat", status=503, times=2)
    beat = heartbeat(client, config, sleep=sleep)
    beat.start()
    try:
        await asyncio.wait_for(third_beat_done.wait(), WAIT_TIMEOUT_SECONDS)
    finally:
        await beat.stop()
    assert [c.status for c in control_plane.heartbeats()] == [503, 503, 200]
    assert (beat.failures, beat.beats) == (2, 1)
    assert slept == [INTERVAL_SECONDS] * 3
    assert caplog.text.count("heartbeat.failed") == 2


async def test_an_unreachable_control_plane_is_a_failed_beat(client, config, control_plane):
    control_plane.stop()
    assert not await heartbeat(client, config).beat()


async def test_callbacks_are_retried_then_delivered_in_order(client, control_plane) -> None:
    control_plane.fail_next("boot-log", status=503, times=2)
    for step in ("clone", "up", "done"):
        entry = {"step": step, "status": "started", "message": step, "detail": None}
        await client.boot_log("ws-1", {**entry, "timestamp": "2026-12-04T00:00:00Z"})
    calls = await control_plane.wait_for_async("boot-log", count=5)
    delivered = [c.body["step"] for c in calls if c.status == 200]
    assert delivered == ["clone", "up", "done"]


async def test_localhost_names_reach_loopback_with_their_host(control_plane, tmp_path):
    url = f"http://api.localhost:{control_plane.port}"
    config = AgentConfig.from_environ(
        {
            "SAM_NODE_ID": control_plane.node_id,
            "SAM_CONTROL_PLANE_URL": url,
            "SAM_STATE_DIR": str(tmp_path),
        }
    )
    write_token_file(config.callback_token_file, INITIAL_CALLBACK_TOKEN)
    async with new_session() as session:
        await ControlPlane(config, session).heartbeat(
            {**metrics(tmp_path, 0.0), "active_workspaces": 0, "agent_version": VERSION}
        )
    [call] = control_plane.heartbeats()
    assert call.host == f"api.localhost:{control_plane.port}"


def test_token_file_is_replaced_atomically(tmp_path: Path) -> None:
    path = tmp_path / "callback-token"
    path.write_text("old\n")
    path.chmod(0o644)
    write_token_file(path, "new")
    assert read_token_file(path) == "new"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert os.listdir(tmp_path) == ["callback-token"]  # no temporary file left behind


def test_the_real_agent_beats_and_adopts_a_new_token(agent: AgentProcess, control_plane):
    first = control_plane.wait_for("heartbeat")[0]
    assert first.token == INITIAL_CALLBACK_TOKEN and first.status == 200
    assert first.body["agent_version"] == VERSION
    assert first.body["memory"]["total"] == psutil.virtual_memory().total
    new_token = control_plane.queue_callback_token()
    control_plane.wait_for("heartbeat", where=lambda c: c.token == new_token)
    assert read_token_file(agent.token_file) == new_token
    assert stat.S_IMODE(agent.token_file.stat().st_mode) == 0o600
    # Still in use after a restart: it was read back from the file.
    agent.kill()
    agent.start()
    seen = len(control_plane.heartbeats())
    control_plane.wait_for("heartbeat", count=seen + 1)
    assert control_plane.heartbeats()[-1].token == new_token
