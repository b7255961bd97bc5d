"""Node bootstrap through the real edge: `POST /api/bootstrap/{token}` (single use, 15 min,
only for a node being made, rate-limited) and `GET /api/agent/download` with
`sam upload-agent`. Expiry and a KV replica's stale read are tested at the unit level on
the KV twin with a manual clock (the edge's clock cannot be moved from outside).
"""

import asyncio
import hashlib
import io
import json
import secrets
import tarfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.artifact import upload_agent
from tests.support.edge import Edge, running_edge
from tests.worker.node_support import add_node, add_user, build_runtime
from twin import env as local_env
from twin.clock import ManualClock, SystemClock
from twin.wrangler import load
from wire.version import VERSION
from worker.auth import scoped_tokens
from worker.auth.scoped_tokens import Audience
from worker.deployment import Deployment
from worker.nodes import bootstrap

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    data_dir = tmp_path_factory.mktemp("bootstrap") / ".sam"
    with running_edge(data_dir) as running:
        yield running


@asynccontextmanager
async def beside(edge: Edge) -> AsyncIterator[Any]:
    """The edge's own bindings, opened from this process (SQLite files shared)."""
    key = json.loads((edge.data_dir / "dev-secrets.json").read_text())["SAM_ENCRYPTION_KEY"]
    runtime = local_env.build(
        load(ROOT / "wrangler.toml"),
        edge.data_dir,
        SystemClock(),
        {"SAM_DOMAIN": edge.domain, "SAM_ENVIRONMENT": "development", "SAM_ENCRYPTION_KEY": key},
    )
    try:
        yield runtime.env
    finally:
        runtime.close()


async def new_node(edge: Edge, status: str = "creating") -> tuple[str, str]:
    """A node row being made and its bootstrap token: (node id, token)."""
    async with beside(edge) as env:
        user = await add_user(env, "user-" + secrets.token_hex(6))
        node_id = await add_node(env, user, provider="hetzner", status=status)
        return node_id, await bootstrap.issue(Deployment.of(env), node_id)


def exchange(edge: Edge, token: str) -> httpx.Response:
    with edge.client("api") as api:
        return api.post(f"/api/bootstrap/{token}")


def test_a_bootstrap_token_becomes_the_nodes_callback_token_once(edge: Edge) -> None:
    node_id, token = asyncio.run(new_node(edge))
    reply = exchange(edge, token)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["node_id"] == node_id
    assert body["control_plane_url"] == f"http://api.{edge.domain}"

    async def verify() -> dict[str, Any]:
        async with beside(edge) as env:
            return await scoped_tokens.verify(
                Deployment.of(env), body["callback_token"], Audience.NODE, node=node_id
            )

    claims = asyncio.run(verify())
    assert claims["exp"] == body["expires_at"]

    replay = exchange(edge, token)
    assert replay.status_code == 401
    assert replay.json()["error"] == "invalid_bootstrap_token"
    assert body["callback_token"] not in edge.log()


@pytest.mark.parametrize(
    "token",
    [
        "A" * 43,  # well-formed, never issued
        "short",
        "A" * 44,
        "x" * 4000,
        "..%2F..%2Fetc%2Fpasswd",
        "A" * 42 + "%00",
        "A" * 42 + "!",
    ],
)
def test_an_unknown_or_malformed_token_is_a_401(edge: Edge, token: str) -> None:
    reply = exchange(edge, token)
    assert reply.status_code in (401, 404), reply.text
    assert reply.json()["error"] in ("invalid_bootstrap_token", "not_found")


@pytest.mark.parametrize("status", ["error", "stopping", "running"])
def test_a_node_no_longer_being_made_gets_no_callback_token(edge: Edge, status: str) -> None:
    _, token = asyncio.run(new_node(edge, status))
    reply = exchange(edge, token)
    assert reply.status_code == 401 and "callback_token" not in reply.json()


def test_a_token_for_a_deleted_node_is_refused(edge: Edge) -> None:
    node_id, token = asyncio.run(new_node(edge))

    async def delete() -> None:
        async with beside(edge) as env:
            await env.DATABASE.prepare("DELETE FROM nodes WHERE id = ?").bind(node_id).run()

    asyncio.run(delete())
    assert exchange(edge, token).status_code == 401


def test_only_hashes_of_tokens_are_stored(edge: Edge) -> None:
    _, token = asyncio.run(new_node(edge))
    assert exchange(edge, token).status_code == 200
    for path in edge.data_dir.rglob("*.sqlite*"):
        assert token.encode() not in path.read_bytes(), path


def test_bootstrap_attempts_are_rate_limited_per_address(tmp_path: Path) -> None:
    with running_edge(tmp_path / ".sam", vars={"SAM_RATE_LIMITS": "bootstrap=3/60"}) as edge:
        statuses = [exchange(edge, "A" * 43).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]


# --- unit level: expiry and a stale KV read ------------------------------------------------


@pytest.fixture
async def clocked(tmp_path: Path) -> AsyncIterator[tuple[Any, ManualClock]]:
    clock = ManualClock()
    runtime = build_runtime(tmp_path / ".sam", clock)
    yield runtime.env, clock
    runtime.close()


async def test_a_token_expires_after_fifteen_minutes(clocked: tuple[Any, ManualClock]) -> None:
    env, clock = clocked
    user = await add_user(env, "alice")
    late = await add_node(env, user, status="creating")
    in_time = await add_node(env, user, status="creating")
    late_token = await bootstrap.issue(Deployment.of(env), late)
    in_time_token = await bootstrap.issue(Deployment.of(env), in_time)
    assert bootstrap.BOOTSTRAP_TTL_SECONDS == 15 * 60
    clock.advance(bootstrap.BOOTSTRAP_TTL_SECONDS - 1)
    assert await bootstrap.redeem(Deployment.of(env), in_time_token) == in_time
    clock.advance(1)
    with pytest.raises(bootstrap.InvalidBootstrapToken):
        await bootstrap.redeem(Deployment.of(env), late_token)


async def test_a_replay_that_a_lagging_kv_replica_still_serves_is_refused(
    clocked: tuple[Any, ManualClock],
) -> None:
    env, _ = clocked
    user = await add_user(env, "alice")
    node_id = await add_node(env, user, status="creating")
    token = await bootstrap.issue(Deployment.of(env), node_id)
    assert await bootstrap.redeem(Deployment.of(env), token) == node_id
    # Another Cloudflare location may read the deleted key for a while: simulate that.
    key = bootstrap.KV_PREFIX + hashlib.sha256(token.encode()).hexdigest()
    await env.KV.put(key, json.dumps({"node_id": node_id}), expirationTtl=600)
    with pytest.raises(bootstrap.InvalidBootstrapToken):
        await bootstrap.redeem(Deployment.of(env), token)


async def test_a_revoked_token_never_works(clocked: tuple[Any, ManualClock]) -> None:
    env, _ = clocked
    node_id = await add_node(env, await add_user(env, "alice"), status="creating")
    token = await bootstrap.issue(Deployment.of(env), node_id)
    await bootstrap.revoke(Deployment.of(env), token)
    with pytest.raises(bootstrap.InvalidBootstrapToken):
        await bootstrap.redeem(Deployment.of(env), token)


# --- the agent artifact --------------------------------------------------------------------


def fake_artifact(directory: Path, version: str = VERSION) -> Path:
    """A tarball shaped like scripts/build-agent's (enough for upload and download)."""
    path = directory / f"sam-agent-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (
            (f"sam-agent-{version}/VERSION", f"{version}\n".encode()),
            (f"sam-agent-{version}/install.sh", b"#!/bin/sh\n"),
        ):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_the_artifact_is_404_until_uploaded_then_served_from_r2(
    tmp_path: Path,
) -> None:
    with running_edge(tmp_path / ".sam") as edge, edge.client("api") as api:
        missing = api.get("/api/agent/download")
        assert missing.status_code == 404
        assert missing.json()["error"] == "agent_artifact_missing"
        assert "sam upload-agent" in missing.json()["message"]

        artifact = fake_artifact(tmp_path)
        done = upload_agent(edge.data_dir, artifact)  # while the edge runs, as a developer would
        assert done.returncode == 0, done.stderr
        assert f"agent/sam-agent-{VERSION}.tar.gz" in done.stdout

        served = api.get("/api/agent/download")
        assert served.status_code == 200
        assert served.content == artifact.read_bytes()
        assert served.headers["content-type"] == "application/gzip"
        # No credential needed: a new node has none when it downloads the agent.
        assert "authorization" not in api.headers


def test_upload_refuses_what_is_not_an_agent_artifact_and_warns_on_another_version(
    tmp_path: Path,
) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball")
    refused = upload_agent(tmp_path / ".sam", junk)
    assert refused.returncode == 2 and "not a readable .tar.gz" in refused.stderr

    other = upload_agent(tmp_path / ".sam", fake_artifact(tmp_path, "9.9.9"))
    assert other.returncode == 0
    assert "agent/sam-agent-9.9.9.tar.gz" in other.stdout and "warning" in other.stdout
