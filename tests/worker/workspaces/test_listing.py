"""The owner's listing, GET /api/workspaces, through the Worker in process on the twin:
every row as GET /api/workspaces/{id} shows it, oldest first, and nobody else's."""

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.worker.node_support import add_node, add_user, build_runtime
from twin import env as local_env
from twin.clock import ManualClock
from twin.entrypoints import ExecutionContext
from twin.http import Request
from worker.auth.api_tokens import create_token
from worker.deployment import Deployment
from worker.nodes import service as nodes
from worker.workspaces import store

API = "http://api.localhost:8787"
# Text a JSON encoder must escape, and text it must not mangle.
AWKWARD = 'git said "fatal: nope"\n\tat line 1 \\ done; ünïcødé ✓ \x01'


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[local_env.Runtime]:
    built = build_runtime(tmp_path / ".sam", ManualClock())
    yield built
    built.close()


async def get(runtime: local_env.Runtime, path: str, token: str) -> tuple[int, Any]:
    worker = runtime.module.Default(ExecutionContext(set()), runtime.env)
    request = Request(f"{API}{path}", headers={"authorization": f"Bearer {token}"})
    response = await worker.fetch(request)
    return response.status, json.loads(await response.bytes())


async def owner_with_token(runtime: local_env.Runtime, login: str) -> tuple[str, str]:
    user_id = await add_user(runtime.env, login)
    made = await create_token(runtime.env.DATABASE, user_id, "cli")
    assert made is not None
    return user_id, made[1]


async def test_the_listing_shows_each_workspace_as_its_own_page_does(
    runtime: local_env.Runtime,
) -> None:
    clock = ManualClock()
    deployment = Deployment.of(runtime.env, clock)
    alice, token = await owner_with_token(runtime, "alice")
    bob, _ = await owner_with_token(runtime, "bob")
    node = await add_node(runtime.env, alice, status="running")
    made = []
    for n, status in enumerate(["pending", "creating", "error", "stopped"]):
        clock.advance(1)  # created_at orders the listing
        workspace = await store.insert(
            deployment,
            f"w{n:031x}f",
            alice,
            f"ws-{n}",
            f"https://e.com/{n}.git",
            None,
            "local",
            None,
        )
        made.append(workspace.id)
        if status == "creating":  # the agent has it: its live boot log is offered
            await store.move(
                deployment,
                workspace.id,
                ("pending",),
                "creating",
                node_id=node,
                dispatched_at="2026-01-01T00:00:00.000Z",
            )
        elif status == "error":
            await store.move(deployment, workspace.id, ("pending",), "error", error_message=AWKWARD)
        elif status == "stopped":
            await store.update(deployment, workspace.id, branch="main", status="stopped")
    await store.insert(
        deployment, "w" + "b" * 32, bob, "bobs", "https://e.com/b.git", None, "local", None
    )

    status, listed = await get(runtime, "/api/workspaces", token)
    assert status == 200
    assert [shown["id"] for shown in listed["workspaces"]] == made
    for shown in listed["workspaces"]:
        status, page = await get(runtime, f"/api/workspaces/{shown['id']}", token)
        assert status == 200 and shown == page
    by_id = {shown["id"]: shown for shown in listed["workspaces"]}
    assert by_id[made[1]]["urls"]["boot_log_ws"] is not None
    assert by_id[made[0]]["urls"]["boot_log_ws"] is None
    assert by_id[made[2]]["error_message"] == AWKWARD
    assert "user_id" not in by_id[made[0]]


async def test_an_empty_listing_and_a_bad_token(runtime: local_env.Runtime) -> None:
    _, token = await owner_with_token(runtime, "carol")
    assert await get(runtime, "/api/workspaces", token) == (200, {"workspaces": []})
    status, refused = await get(runtime, "/api/workspaces", "sam_pat_" + "x" * 43)
    assert status == 401 and refused["error"] == "unauthorized"


async def test_numbers_read_back_as_d1_gives_them(runtime: local_env.Runtime) -> None:
    """Rows read in bulk (one JSON text each) give numbers and JSON columns as single
    reads do: an INTEGER column as int, a TEXT column of JSON parsed by its model."""
    user = await add_user(runtime.env, "dave")
    await add_node(runtime.env, user, agent_port=8080, workspace_count=2, metrics='{"cpu": 0.5}')
    (node,) = await nodes.list_nodes(Deployment.of(runtime.env, ManualClock()), user)
    assert node.agent_url == "https://127.0.0.1:8080"
    assert node.workspace_count == 2 and type(node.agent_port) is int
    assert node.metrics == {"cpu": 0.5}
