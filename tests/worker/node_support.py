"""Shared by the node tests: an in-process runtime on the real wrangler.toml, and rows."""

import secrets
from pathlib import Path
from typing import Any

from worker.crypto import generate_key
from worker.local import env as local_env
from worker.local.clock import Clock
from worker.local.wrangler import load

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
