"""Shared by the node tests: an in-process runtime on the real wrangler.toml, and rows."""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from tests.fakes.cloudflare_dns import FakeCloudflareDns
from tests.fakes.hetzner import FakeHetzner
from twin import env as local_env
from twin import upstream
from twin.clock import Clock, ManualClock
from twin.wrangler import load
from worker.auth.credentials import CredentialKind, save_credential
from worker.auth.crypto import generate_key
from worker.deployment import Deployment
from worker.nodes import service as nodes
from worker.nodes.model import Node, Provider

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "localhost:8787"
CAPACITY = 3
WARM_SECONDS = 600.0


def build_runtime(
    data_dir: Path, clock: Clock, overrides: dict[str, str] | None = None
) -> local_env.Runtime:
    """What `sam dev` builds (D1 migrated, KV, R2, NODE_LIFECYCLE), on `clock`."""
    return local_env.build(
        load(ROOT / "wrangler.toml"),
        data_dir,
        clock,
        {
            "SAM_DOMAIN": DOMAIN,
            "SAM_ENVIRONMENT": "development",
            "SAM_ENCRYPTION_KEY": generate_key(),
            "SAM_MAX_WORKSPACES_PER_NODE": str(CAPACITY),
            "SAM_WARM_TIMEOUT_SECONDS": str(WARM_SECONDS),
            **(overrides or {}),
        },
    )


async def add_user(env: Any, login: str) -> str:
    user_id = "u_" + secrets.token_hex(8)
    await (
        env.DATABASE.prepare("INSERT INTO users (id, login) VALUES (?, ?)")
        .bind(user_id, login)
        .run()
    )
    return user_id


async def add_node(
    env: Any, user_id: str, provider: str = "local", status: str = "running", **fields: Any
) -> str:
    """A node row as provisioning leaves it (no VM behind it unless `fields` say so)."""
    node_id = "n" + secrets.token_hex(8)
    values = {
        "id": node_id,
        "user_id": user_id,
        "name": f"node-{node_id[-4:]}",
        "provider": provider,
        "status": status,
        "agent_host": "127.0.0.1",
        **fields,
    }
    names = ", ".join(values)
    marks = ", ".join("?" * len(values))
    await (
        env.DATABASE.prepare(f"INSERT INTO nodes ({names}) VALUES ({marks})")
        .bind(*values.values())
        .run()
    )
    return node_id


async def node_row(env: Any, node_id: str) -> Any:
    return await env.DATABASE.prepare("SELECT * FROM nodes WHERE id = ?").bind(node_id).first()


async def advance(runtime: local_env.Runtime, seconds: float) -> None:
    """Move the runtime's ManualClock on and let every alarm that fell due run."""
    runtime.alarms.clock.advance(seconds)  # type: ignore[attr-defined]
    await runtime.alarms.settle()


# --- a runtime whose Hetzner and Cloudflare DNS APIs are the loopback fakes ---------------


@asynccontextmanager
async def cloud_runtime(
    data_dir: Path,
    hetzner: FakeHetzner,
    cloudflare: FakeCloudflareDns,
    settings: dict[str, str] | None = None,
) -> AsyncIterator[local_env.Runtime]:
    """The runtime `sam dev` builds, on the loopback Hetzner and DNS, with `settings` too."""
    overrides = {"SAM_HETZNER_API_URL": hetzner.url, **cloudflare.vars(), **(settings or {})}
    built = build_runtime(data_dir, ManualClock(), overrides)
    built.alarms.start()
    try:
        yield built
    finally:
        await built.alarms.stop()
        built.close()
        await upstream.close()


async def hetzner_node(
    deployment: Deployment, hetzner: FakeHetzner, login: str = "carol"
) -> tuple[str, str, Node]:
    """(user id, the user's Hetzner token, node) provisioned through the real provider."""
    user = await add_user(deployment.env, login)
    token = hetzner.add_token()
    await save_credential(deployment, user, CredentialKind.HETZNER, "", token)
    node = await nodes.create_node(deployment, user, Provider.HETZNER)
    return user, token, node
