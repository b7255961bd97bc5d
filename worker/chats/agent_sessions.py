"""The worker's client for a node agent's agent-session routes (docs/protocols/agent-sessions.md),
on worker/workspaces/agent_client.py's `call` (a fresh sam:agent token, retries on 5xx).

    await create(deployment, workspace_id, NewAgentSession(id=…, prompt=…, chat=…)) -> Delivery
    await prompt(deployment, workspace_id, session_id, Prompt(text=…, id=…)) -> Delivery
    await stop(deployment, workspace_id, session_id) -> Delivery
    await answer_permission(deployment, workspace_id, session_id, request_id, answer) -> Delivery

Each answers what the agent's answer means for the caller: `done` (taken, or a repeat of
something taken; `state` is the session's as the agent answered it), `gone` (the workspace
or the session is no longer there: 404, or a session that has ended), `refused` (a 4xx
the caller cannot fix by retrying; `message` says why, `code` is the agent's error code).
An agent that cannot be reached (or a node not up) raises agent_client's AgentUnreachable /
NodeNotReady: the caller retries later.
"""

from dataclasses import dataclass, replace
from typing import Literal

from pydantic import BaseModel

from wire.agent_session import NewAgentSession, PermissionAnswer, Prompt, SessionState
from worker.deployment import Deployment
from worker.errors import UpstreamFailed
from worker.http_retry import RetryPolicy
from worker.nodes import service as nodes
from worker.states import WorkspaceStatus
from worker.workspaces import agent_client, store
from worker.workspaces.agent_client import AgentAnswer

# Answers that mean "the session (or its workspace) is no longer there".
_GONE_CODES = frozenset(
    {
        "agent_session_not_found",
        "agent_session_ended",
        "workspace_not_found",
        "workspace_not_running",
    }
)

_STATES = frozenset(str(state) for state in SessionState)
# A create is not sent again at once: a repeat of its id answers the session as it is, so
# an adapter that exited at start (502 agent_start_failed, whose message quotes its stderr)
# would come back as a plain `crashed` session. The run retries what is transient itself.
CREATE_RETRY = replace(agent_client.AGENT_RETRY, attempts=1)


@dataclass(frozen=True)
class Delivery:
    outcome: Literal["done", "gone", "refused"]
    status: int
    code: str | None
    message: str
    state: SessionState | None = None  # a `done` answer's session state, when it has one


async def create(deployment: Deployment, workspace_id: str, session: NewAgentSession) -> Delivery:
    return await _send(deployment, workspace_id, "POST", "", session, CREATE_RETRY)


async def prompt(
    deployment: Deployment, workspace_id: str, session_id: str, body: Prompt
) -> Delivery:
    return await _send(deployment, workspace_id, "POST", f"/{session_id}/prompt", body)


async def stop(deployment: Deployment, workspace_id: str, session_id: str) -> Delivery:
    return await _send(deployment, workspace_id, "POST", f"/{session_id}/stop")


async def answer_permission(
    deployment: Deployment,
    workspace_id: str,
    session_id: str,
    request_id: str,
    answer: PermissionAnswer,
) -> Delivery:
    path = f"/{session_id}/permissions/{request_id}"
    return await _send(deployment, workspace_id, "POST", path, answer)


async def _send(
    deployment: Deployment,
    workspace_id: str,
    method: str,
    rest: str,
    body: BaseModel | None = None,
    retry: RetryPolicy = agent_client.AGENT_RETRY,
) -> Delivery:
    workspace = await store.find(deployment, workspace_id)
    if workspace is None or workspace.node_id is None:
        return Delivery("gone", 404, "workspace_not_found", f"Workspace {workspace_id} is gone.")
    if workspace.status != WorkspaceStatus.RUNNING:
        # Stopped, failed or being rebuilt: its sessions have ended with it.
        message = f"Workspace {workspace_id} is {workspace.status}."
        return Delivery("gone", 409, "workspace_not_running", message)
    node = await nodes.find_node(deployment, workspace.node_id)
    if node is None:
        return Delivery("gone", 404, "node_not_found", f"The node of {workspace_id} is gone.")
    path = f"/workspaces/{workspace_id}/agent-sessions{rest}"
    return _meaning(await agent_client.call(deployment, node, method, path, body, retry))


def _meaning(answer: AgentAnswer) -> Delivery:
    if answer.error == "agent_start_failed":  # the adapter itself failed: retrying won't help
        return Delivery("refused", answer.status, answer.error, answer.message)
    if 200 <= answer.status < 300:
        return Delivery("done", answer.status, None, "taken", _state(answer.body.get("state")))
    if answer.error == "permission_request_not_found":  # answered already, or timed out
        return Delivery("refused", answer.status, answer.error, answer.message)
    if answer.status == 404 or answer.error in _GONE_CODES:
        return Delivery("gone", answer.status, answer.error, answer.message)
    if answer.status == 429 or answer.status >= 500 or answer.error == "agent_session_busy":
        # Busy (its prompt queue is full), or failing after agent_client's own retries:
        # a later alarm tries again.
        raise UpstreamFailed("agent_busy", f"The agent answered {answer.status}: {answer.message}")
    return Delivery("refused", answer.status, answer.error, answer.message)


def _state(value: object) -> SessionState | None:
    return SessionState(value) if isinstance(value, str) and value in _STATES else None
