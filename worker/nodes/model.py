"""What a node is: the `Node` record the node service, the pool and the providers share.

Kept apart from worker/nodes/service.py so that the providers, the NodeLifecycle object and the
routes can all name a node without importing the service that provisions it.
"""

import datetime
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from worker.deployment import Deployment
from worker.states import NodeStatus, health_for

# A cloud node's agent serves TLS on 443: Cloudflare's proxy carries HTTPS there, and a
# Worker's fetch ignores any other port of an https URL (docs/edge-to-node.md).
CLOUD_AGENT_PORT = 443


class Provider(StrEnum):
    LOCAL = "local"
    HETZNER = "hetzner"


def epoch(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass(frozen=True)
class Node:
    id: str
    user_id: str
    name: str
    provider: str
    status: str
    health: str | None
    size: str | None
    location: str | None
    provider_server_id: str | None
    ip_address: str | None
    error_message: str | None
    last_heartbeat_at: str | None
    agent_host: str | None
    agent_port: int | None
    agent_version: str | None
    ready_at: str | None
    dns_record_id: str | None
    metrics: dict[str, Any] | None
    warm_since: str | None
    workspace_count: int
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Any) -> "Node":
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["metrics"] = json.loads(row["metrics"]) if row["metrics"] else None
        values["workspace_count"] = int(row["workspace_count"] or 0)
        return cls(**values)

    def current_health(self, interval_seconds: float, now: float) -> str | None:
        """Health judged at `now` from the last heartbeat (cron writes the same into D1)."""
        if self.status != NodeStatus.RUNNING:
            return self.health
        judged = health_for(epoch(self.last_heartbeat_at), now, interval_seconds)
        return None if judged is None else str(judged)

    @property
    def agent_url(self) -> str | None:
        """`https://{agent_host}:{port}` once the agent has reported ready: every agent
        serves TLS for its own name (docs/edge-to-node.md); there is no plain-HTTP hop."""
        if self.agent_host is None or self.agent_port is None:
            return None
        return f"https://{self.agent_host}:{self.agent_port}"


def lifecycle_stub(deployment: Deployment, node_id: str) -> Any:
    """The node's NodeLifecycle Durable Object (one per node, named by its id)."""
    namespace = deployment.env.NODE_LIFECYCLE
    return namespace.get(namespace.idFromName(node_id))
