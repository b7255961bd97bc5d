"""The real local edge (`sam dev`'s LocalEdge under uvicorn) run in the test's own process.

The project chat tests need both sides of it: HTTP and WebSockets from outside, as a
browser, a script or a node agent reach it, and the runtime's bindings from inside (a
chat made and linked through ProjectData's RPC, as the TaskRunner will; an object
evicted). Stopping it and starting another on the same data directory is an edge restart:
D1 and every Durable Object's storage are files there.
"""

import asyncio
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from devtools.cli import dev_secrets
from devtools.local_nodes import local_nodes_service
from tests.support.edge import free_port
from tests.support.wait import eventually
from tests.worker.node_support import ROOT, add_node
from twin.server import LocalEdge
from twin.wrangler import load
from worker.api.ratelimit import LIMITS
from worker.auth import scoped_tokens
from worker.deployment import Deployment
from worker.workspaces import store as workspace_store
from worker.workspaces.model import new_workspace_id

START_TIMEOUT_SECONDS = 30.0


@dataclass
class InProcessEdge:
    edge: LocalEdge
    port: int

    @property
    def env(self) -> Any:
        assert self.edge.runtime is not None
        return self.edge.runtime.env

    @property
    def deployment(self) -> Deployment:
        return Deployment.of(self.env, self.edge.clock)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def host(self, label: str) -> str:
        return f"{label}.localhost:{self.port}"

    @property
    def app_origin(self) -> str:
        return f"http://{self.host('app')}"

    def client(self, host: str = "api", **headers: str) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers={"host": self.host(host), **headers}, timeout=30.0
        )


@dataclass
class Member:
    id: str
    login: str
    session: str
    token: str

    def bearer(self) -> dict[str, str]:
        return {"authorization": f"Bearer {self.token}"}


@asynccontextmanager
async def in_process_edge(data_dir: Path, port: int | None = None) -> AsyncIterator[InProcessEdge]:
    port = port or free_port()
    edge = LocalEdge(
        load(ROOT / "wrangler.toml"),
        data_dir,
        overrides={
            **dev_secrets(data_dir),
            "SAM_DOMAIN": f"localhost:{port}",
            "SAM_ENVIRONMENT": "development",
            "SAM_RATE_LIMITS": ",".join(f"{name}=100000/60" for name in LIMITS),
        },
        services={"LOCAL_NODES": local_nodes_service},
    )
    server = uvicorn.Server(
        uvicorn.Config(
            edge,
            host="127.0.0.1",
            port=port,
            lifespan="on",
            access_log=False,
            log_config=None,
            ws_max_size=4 * 1024 * 1024,
            ws_per_message_deflate=False,
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(
            lambda: server.started or serving.done(), "the edge to start", START_TIMEOUT_SECONDS
        )
        assert server.started, f"the edge did not start: {serving}"
        yield InProcessEdge(edge, port)
    finally:
        server.should_exit = True
        await serving


async def join(edge: InProcessEdge, login: str) -> Member:
    """A user signed in through the dev sign-in (a session), with an API token too."""
    async with edge.client("app", origin=edge.app_origin) as app:
        signed_in = await app.post("/api/auth/dev-login", json={"login": login})
        assert signed_in.status_code == 200, signed_in.text
        session = signed_in.cookies["sam_session"]
        minted = await app.post("/api/tokens", json={"name": "tests"})
        assert minted.status_code == 201, minted.text
    return Member(signed_in.json()["id"], login, session, minted.json()["token"])


async def node_workspace(edge: InProcessEdge, user_id: str) -> tuple[str, str]:
    """(workspace id, the sam:node token of its node): what a node agent's outbox holds."""
    node_id = await add_node(edge.env, user_id)
    deployment = edge.deployment
    workspace = await workspace_store.insert(
        deployment,
        new_workspace_id(),
        user_id,
        "ws",
        "https://example.com/a/repo.git",
        None,
        "local",
        None,
    )
    await workspace_store.update(deployment, workspace.id, node_id=node_id)
    minted = await scoped_tokens.mint_node_token(deployment, node_id)
    return workspace.id, minted.token


def chat_id() -> str:
    return "c" + secrets.token_hex(8)
