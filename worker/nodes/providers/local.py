"""The `local` provider: a node agent process on this machine, for `sam dev`.

Worker code cannot start processes (a Worker has no subprocess), so this asks the local
edge's node launcher (devtools/local_nodes.py), which the edge adds to `env` as the service
binding `LOCAL_NODES` when it runs under `sam dev`:

    POST   http://local-nodes/nodes        {node_id, user_id, control_plane_url,
                                            bootstrap_token}
                                           → 201 {node_id, agent_host, agent_port}
    DELETE http://local-nodes/nodes/{id}   → 200 (already gone too)
    GET    http://local-nodes/nodes        → {"nodes": [{node_id, user_id, agent_port,
                                              running, pid}]}
    POST   http://local-nodes/repositories/check  {path, roots: [dir, ...] | null}
                                           → {"path": the resolved path, or null: refused}

The launcher starts the agent serving TLS as `agent_host` (`vm-{id}.localhost`, always
this machine) with a certificate from the local CA the edge trusts for those names.
On Cloudflare there is no such binding, and the provider says so (400).
"""

import json
from typing import Any
from urllib.parse import quote

from worker.deployment import Deployment
from worker.errors import Conflict, InvalidInput, UpstreamFailed
from worker.nodes.providers.base import (
    ManagedServer,
    NodeBoot,
    NodeWanted,
    ProvisionedServer,
    ServerOwner,
)
from worker.platform import Request

LAUNCHER_URL = "http://local-nodes/nodes"
REPOSITORY_CHECK_URL = "http://local-nodes/repositories/check"
AGENT_IP = "127.0.0.1"


class LocalProviderUnavailable(InvalidInput):
    def __init__(self) -> None:
        super().__init__(
            "local_provider_unavailable",
            "The local provider is only available under `sam dev` (it starts the agent on "
            "the machine running SAM). Use Hetzner here.",
        )


class LocalProvider:
    name = "local"

    def check_available(self, deployment: Deployment) -> None:
        if getattr(deployment.env, "LOCAL_NODES", None) is None:
            raise LocalProviderUnavailable()

    async def _call(
        self, deployment: Deployment, method: str, url: str, body: dict[str, Any] | None = None
    ) -> Any:
        self.check_available(deployment)
        init: dict[str, Any] = {"method": method}
        if body is not None:
            init["body"] = json.dumps(body)
            init["headers"] = {"content-type": "application/json"}
        response = await deployment.env.LOCAL_NODES.fetch(Request(url, **init))
        answer = await response.json()
        if response.status == 409:  # a refusal the user can act on (e.g. no Docker Engine)
            raise Conflict(answer.get("error", "local_node_refused"), answer.get("message", ""))
        if not 200 <= response.status < 300:
            raise UpstreamFailed(
                "local_node_failed",
                f"The local node launcher refused: {answer.get('message', response.status)}",
            )
        return answer

    async def create_server(
        self, deployment: Deployment, node: NodeWanted, user_id: str, boot: NodeBoot
    ) -> ProvisionedServer:
        answer = await self._call(
            deployment,
            "POST",
            LAUNCHER_URL,
            {
                "node_id": node.id,
                "user_id": user_id,
                "control_plane_url": boot.control_plane_url,
                "bootstrap_token": boot.bootstrap_token,
            },
        )
        return ProvisionedServer(
            provider_server_id=node.id,
            ip=AGENT_IP,
            agent_host=str(answer["agent_host"]),
            agent_port=int(answer["agent_port"]),
            location="local",
        )

    async def delete_server(self, deployment: Deployment, node: ServerOwner) -> None:
        await self._call(deployment, "DELETE", f"{LAUNCHER_URL}/{quote(node.id, safe='')}")

    async def check_repository(
        self, deployment: Deployment, path: str, roots: list[str] | None
    ) -> str | None:
        """`path` resolved on this machine if it is a git repository inside `roots` (None:
        anywhere); None if not (worker/workspaces/local_paths.py words the refusal)."""
        answer = await self._call(
            deployment, "POST", REPOSITORY_CHECK_URL, {"path": path, "roots": roots}
        )
        resolved = answer.get("path")
        return resolved if isinstance(resolved, str) else None

    async def list_managed(
        self, deployment: Deployment, user_id: str | None
    ) -> list[ManagedServer]:
        """This user's local nodes (None: everyone's, as there is one machine)."""
        answer = await self._call(deployment, "GET", LAUNCHER_URL)
        return [
            ManagedServer(
                provider="local",
                provider_server_id=each["node_id"],
                node_id=each["node_id"],
                user_id=each.get("user_id") or "",
                name=f"local-{each['node_id']}",
                status="running" if each.get("running") else "off",
                ip=AGENT_IP,
            )
            for each in answer["nodes"]
            if user_id is None or each.get("user_id") == user_id
        ]
