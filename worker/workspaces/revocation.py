"""Telling a user's nodes that one of their grants is gone (signed out, API token revoked).

The edge already refuses every terminal token of a revoked grant (worker/auth/grants.py);
the nodes close the terminals, boot logs and agent-session viewers those tokens had opened,
and refuse the tokens if presented to them directly (agent/grants.py). A node that does not
answer within NOTIFY_TIMEOUT_SECONDS is skipped: sign-out does not wait on a dead machine,
and the tokens it would refuse expire within 5 minutes anyway.
"""

import asyncio
import logging

from wire.agent_api import RevokeGrant
from worker.deployment import Deployment
from worker.logs import event
from worker.nodes import service as nodes
from worker.nodes.model import Node
from worker.workspaces import agent_client

log = logging.getLogger("sam.revocation")

NOTIFY_TIMEOUT_SECONDS = 5.0


async def revoke_on_nodes(deployment: Deployment, user_id: str, grant: str) -> None:
    """Tell every node of `user_id` with a live agent that `grant` is revoked."""
    reachable = [node for node in await nodes.list_nodes(deployment, user_id) if node.agent_url]
    await asyncio.gather(*(_notify(deployment, node, grant) for node in reachable))


async def _notify(deployment: Deployment, node: Node, grant: str) -> None:
    body = RevokeGrant(grant=grant)
    try:
        answer = await asyncio.wait_for(
            agent_client.call(deployment, node, "POST", "/grants/revoke", body),
            NOTIFY_TIMEOUT_SECONDS,
        )
    except (TimeoutError, agent_client.AgentUnreachable) as exc:
        event(log, "grant.revoke_unreachable", node=node.id, error=type(exc).__name__)
        return
    closed = answer.body.get("closed")
    event(log, "grant.revoked", node=node.id, status=answer.status, closed=closed)
