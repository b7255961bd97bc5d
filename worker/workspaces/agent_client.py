"""Calls from the control plane to a node's agent (docs/protocols/agent-api.md).

Each call carries a fresh sam:agent token for that node (5 minutes), goes through the
runtime's `fetch`, and is retried on a failed connection, 429 or 5xx a few times within
a few seconds (a node that has just said it is ready may still be settling). Every
workspace operation of the agent is idempotent or answers 404/409 on a repeat, so a
retry after a lost answer is safe. Bodies are the models of wire/agent_api.py, which the
agent's routes use too.

    await call(deployment, node, method, path, body=None) -> AgentAnswer(node_id, status, body)
        AgentUnreachable (502) when no answer came; any status is returned as is
    answer.workspace() -> AgentWorkspace
        AgentBadAnswer (502) when the body is not one
"""

import json
import logging
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from wire.agent_api import AgentWorkspace
from worker.auth import scoped_tokens
from worker.deployment import Deployment
from worker.errors import Conflict, UpstreamFailed
from worker.http_retry import RetryPolicy, Unreachable, send_with_retry
from worker.nodes.model import Node
from worker.platform import fetch

log = logging.getLogger("sam.agent_client")

AGENT_RETRY = RetryPolicy(
    attempts=3,
    base_delay_seconds=0.25,
    max_delay_seconds=2.0,
    max_server_delay_seconds=5.0,
    timeout_seconds=20.0,
)


@dataclass(frozen=True)
class AgentAnswer:
    node_id: str
    status: int
    body: dict[str, Any]

    def workspace(self) -> AgentWorkspace:
        """The body as the workspace the agent reports (a 200 or 202 answer)."""
        try:
            return AgentWorkspace.model_validate(self.body)
        except ValidationError as exc:
            problem = exc.errors(include_url=False)[0]
            where = ".".join(str(part) for part in problem["loc"]) or "body"
            raise AgentBadAnswer(self.node_id, f"{where}: {problem['msg']}") from None

    @property
    def error(self) -> str | None:
        return self.body.get("error") if isinstance(self.body.get("error"), str) else None

    @property
    def message(self) -> str:
        message = self.body.get("message")
        return message if isinstance(message, str) else f"the agent answered {self.status}"


class AgentUnreachable(UpstreamFailed):
    def __init__(self, node_id: str, reason: str) -> None:
        super().__init__(
            "agent_unreachable",
            f"The agent of node {node_id} did not answer ({reason}). Try again in a minute.",
        )


class AgentBadAnswer(UpstreamFailed):
    def __init__(self, node_id: str, problem: str) -> None:
        super().__init__(
            "agent_bad_answer",
            f"The agent of node {node_id} answered something that is not in its API "
            f"({problem}); is it the same version as the control plane?",
        )


class NodeNotReady(Conflict):
    def __init__(self, node_id: str) -> None:
        super().__init__(
            "node_not_ready", f"Node {node_id} has no agent ready yet; try again shortly."
        )


async def call(
    deployment: Deployment,
    node: Node,
    method: str,
    path: str,
    body: BaseModel | None = None,
    retry: RetryPolicy = AGENT_RETRY,
) -> AgentAnswer:
    base = node.agent_url
    if base is None:
        raise NodeNotReady(node.id)
    minted = await scoped_tokens.mint_agent_token(deployment, node.id)
    headers = {"Authorization": f"Bearer {minted.token}", "Accept": "application/json"}
    init: dict[str, Any] = {"method": method, "headers": headers}
    if body is not None:
        headers["Content-Type"] = "application/json"
        init["body"] = body.model_dump_json(exclude_none=True)
    try:
        response = await send_with_retry(
            lambda: fetch(base + path, **init), retry, what=f"agent {method} {path}"
        )
    except Unreachable as exc:
        raise AgentUnreachable(node.id, exc.reason) from exc
    text = await response.text()
    try:
        answer = json.loads(text) if text else {}
    except ValueError:
        answer = {}
    return AgentAnswer(node.id, response.status, answer if isinstance(answer, dict) else {})
