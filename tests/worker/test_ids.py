"""Ids carry 128 random bits (≥ 122 is the norm), and rows made with the shorter ids of
before (48 bits for workspaces, 64 for the rest) still work."""

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.worker.node_support import add_node, add_user, build_runtime
from twin.clock import ManualClock
from worker.auth.api_tokens import create_token
from worker.auth.credentials import CredentialKind, list_credentials, save_credential
from worker.auth.users import upsert_local_user
from worker.deployment import Deployment
from worker.edge.hosts import Surface, resolve
from worker.nodes.service import get_node, new_node_id
from worker.workspaces import store
from worker.workspaces.model import new_workspace_id

MIN_RANDOM_BITS = 122
OLD_WORKSPACE_ID = "w0123456789ab"  # 12 hex digits, as workspaces were made before


@pytest.fixture
async def deployment(tmp_path: Path) -> AsyncIterator[Deployment]:
    runtime = build_runtime(tmp_path / ".sam", ManualClock())
    try:
        yield Deployment.of(runtime.env)
    finally:
        runtime.close()


def random_bits(identifier: str, prefix: str) -> int:
    assert identifier.startswith(prefix)
    digits = identifier.removeprefix(prefix)
    assert re.fullmatch(r"[0-9a-f]+", digits), identifier  # host names want lowercase hex
    return 4 * len(digits)


async def test_new_ids_carry_at_least_122_random_bits(deployment: Deployment) -> None:
    user = await upsert_local_user(deployment.env.DATABASE, "idbits")
    made = await create_token(deployment.env.DATABASE, user.id, "bits")
    assert made is not None
    await save_credential(deployment, user.id, CredentialKind.OPENAI, "", "sk-bits-0000000001")
    (credential,) = await list_credentials(deployment, user.id)
    for identifier, prefix in [
        (user.id, "u_"),
        (made[0]["id"], "tok_"),
        (credential.id, "cr_"),
        (new_node_id(), "n"),
        (new_workspace_id(), "w"),
    ]:
        assert random_bits(identifier, prefix) >= MIN_RANDOM_BITS, identifier
    workspace_id = new_workspace_id()
    assert resolve(f"ws-{workspace_id}.localhost:8787", "localhost:8787").surface == (
        Surface.WORKSPACE
    )


async def test_rows_with_the_shorter_ids_of_before_still_work(deployment: Deployment) -> None:
    env = deployment.env
    user_id = await add_user(env, "olduser")  # u_ + 16 hex digits
    node_id = await add_node(env, user_id)  # n + 16 hex digits
    assert (await get_node(deployment, user_id, node_id)).id == node_id
    await (
        env.DATABASE.prepare(
            "INSERT INTO workspaces (id, user_id, node_id, name, repository, status, provider) "
            "VALUES (?, ?, ?, 'old', 'https://example.com/old.git', 'running', 'local')"
        )
        .bind(OLD_WORKSPACE_ID, user_id, node_id)
        .run()
    )
    assert (await store.get(deployment, user_id, OLD_WORKSPACE_ID)).id == OLD_WORKSPACE_ID
    assert resolve(f"ws-{OLD_WORKSPACE_ID}.localhost:8787", "localhost:8787").workspace_id == (
        OLD_WORKSPACE_ID
    )
