"""A run's steps and control deliveries: the side effects, each idempotent by an id the
TaskRunner chose and persisted before calling (so a step that runs again after a crash
finds what it made instead of making it twice).

    await run_step(deployment, step, spec, workspace_id, agent_session_id) -> Outcome
    await deliver(deployment, workspace_id, agent_session_id, control) -> Delivery

An Outcome is `done` (persist, go on), `wait` (look again after `seconds`) or `failed`
(the run ends: `detail` says why and what to do). A transient failure (the node's agent
unreachable, a node still booting, a 5xx) is raised as a SamError that `is_transient`
accepts: the caller retries with backoff until the step's timeout. Any other SamError
ends the run with its message.
"""

from dataclasses import dataclass
from typing import Literal

from wire.agent_session import NewAgentSession, PermissionAnswer, Prompt, SessionState
from wire.chat import ChatLink, ChatStatus
from worker.auth.agent_keys import AgentCredentialMissing, open_agent_credential
from worker.auth.users import get_user
from worker.chats import agent_sessions
from worker.chats.agent_sessions import Delivery
from worker.chats.context import first_prompt
from worker.chats.crash_report import crash_reason
from worker.chats.run import Control, RunSpec, Step
from worker.deployment import Deployment
from worker.errors import SamError, Unavailable, UpstreamFailed
from worker.nodes import service as nodes
from worker.projects import chat_data
from worker.states import NodeStatus, WorkspaceStatus
from worker.workspaces import dispatch, store
from worker.workspaces import service as workspaces
from worker.workspaces.agent_client import NodeNotReady

# How often workspace_ready looks while the workspace is being made: only the fallback, as
# the workspace's ready or failed callback wakes the run (worker/chats/workspace_events.py).
READY_POLL_SECONDS = 10.0
# How often agent_session looks at a session still starting (or restarting), or at a crashed
# one whose report has not reached the chat yet; the step's timeout bounds the waiting.
SESSION_POLL_SECONDS = 1.0
# Agents whose sessions need the owner's Anthropic key (the node's model proxy injects it).
AGENTS_NEEDING_ANTHROPIC_KEY = frozenset({"claude-code"})

NO_MODEL_KEY = (
    "You have no Anthropic key: add a key in Settings → Agent, then send your message again."
)

_W = WorkspaceStatus
_S = SessionState


@dataclass(frozen=True)
class Outcome:
    kind: Literal["done", "wait", "failed"]
    detail: str
    seconds: float = 0.0


def is_transient(error: SamError) -> bool:
    """Worth another try later: a third party or a node's agent failed, or is not up yet."""
    return isinstance(error, UpstreamFailed | Unavailable | NodeNotReady)


async def run_step(
    deployment: Deployment, step: Step, spec: RunSpec, workspace_id: str, agent_session_id: str
) -> Outcome:
    if step == Step.WORKSPACE:
        return await _workspace(deployment, spec, workspace_id)
    if step == Step.WORKSPACE_READY:
        return await _workspace_ready(deployment, workspace_id)
    if step == Step.AGENT_SESSION:
        return await _agent_session(deployment, spec, workspace_id, agent_session_id)
    assert step == Step.LINKED, step
    return await _linked(deployment, spec, workspace_id, agent_session_id)


async def deliver(
    deployment: Deployment, workspace_id: str, agent_session_id: str, control: Control
) -> Delivery:
    """One control to the session's agent; AgentUnreachable etc. when it cannot be reached."""
    if control.kind == "prompt":
        assert control.text is not None
        body = Prompt(text=control.text, id=control.id)
        return await agent_sessions.prompt(deployment, workspace_id, agent_session_id, body)
    if control.kind == "permission":
        assert control.request_id is not None and control.option_id is not None
        answer = PermissionAnswer(option_id=control.option_id)
        return await agent_sessions.answer_permission(
            deployment, workspace_id, agent_session_id, control.request_id, answer
        )
    return await agent_sessions.stop(deployment, workspace_id, agent_session_id)


# --- the steps ------------------------------------------------------------------------------


async def _workspace(deployment: Deployment, spec: RunSpec, workspace_id: str) -> Outcome:
    user = await get_user(deployment.env.DATABASE, spec.user_id)
    if user is None:
        return Outcome("failed", "The chat's owner no longer exists.")
    if spec.agent in AGENTS_NEEDING_ANTHROPIC_KEY:
        try:  # before a VM is paid for: without a key the agent cannot start
            await open_agent_credential(deployment, spec.user_id)
        except AgentCredentialMissing:
            return Outcome("failed", NO_MODEL_KEY)
    request = {
        "repository": spec.repository,
        "branch": spec.branch,
        "provider": spec.provider,
        "size": spec.node_size,
    }
    workspace = await workspaces.create(deployment, user, request, workspace_id=workspace_id)
    return Outcome("done", f"Workspace {workspace.id} on {workspace.repository}.")


async def _workspace_ready(deployment: Deployment, workspace_id: str) -> Outcome:
    workspace = await store.find(deployment, workspace_id)
    if workspace is None:
        return Outcome("failed", "The workspace was deleted before it started.")
    if workspace.status == _W.RUNNING:
        return Outcome("done", f"Workspace {workspace_id} is running.")
    if workspace.status == _W.ERROR:
        reason = workspace.error_message or "it failed to start"
        return Outcome(
            "failed",
            f"The workspace failed: {reason}. Fix the cause (its boot log has the details), "
            "then send your message again.",
        )
    if workspace.status in (_W.STOPPING, _W.STOPPED):
        return Outcome("failed", "The workspace was stopped before it started.")
    # Pending or creating: ask the node's agent (the ready callback may be late or lost).
    node = (
        None if workspace.node_id is None else await nodes.find_node(deployment, workspace.node_id)
    )
    if node is not None and node.status == NodeStatus.RUNNING and node.agent_url is not None:
        moved = await dispatch.converge(deployment, workspace, node)
        if moved.status == _W.RUNNING:
            return Outcome("done", f"Workspace {workspace_id} is running.")
    return Outcome("wait", f"Workspace {workspace_id} is {workspace.status}.", READY_POLL_SECONDS)


async def _agent_session(
    deployment: Deployment, spec: RunSpec, workspace_id: str, agent_session_id: str
) -> Outcome:
    session = NewAgentSession(
        id=agent_session_id,
        agent=spec.agent,
        prompt=first_prompt(spec.context, spec.prompt),
        prompt_id=spec.prompt_id,
        permission_mode=spec.permission_mode,
        chat=ChatLink(project_id=spec.project_id, chat_id=spec.chat_id),
    )
    answer = await agent_sessions.create(deployment, workspace_id, session)
    if answer.outcome == "done":
        return await _session_up(deployment, spec, agent_session_id, answer.state)
    if answer.code == "agent_start_failed":  # the adapter exited at start
        return await _crashed(deployment, spec, agent_session_id, answer.message)
    if answer.code == "agent_credential_missing":
        return Outcome("failed", NO_MODEL_KEY)
    if answer.outcome == "gone":
        return Outcome(
            "failed", f"The workspace went away before the agent started ({answer.message})."
        )
    return Outcome("failed", f"The agent did not start: {answer.message}")


async def _session_up(
    deployment: Deployment, spec: RunSpec, agent_session_id: str, state: SessionState | None
) -> Outcome:
    """Done only when the session really runs: a repeated create answers the session as it
    is, which may be one whose adapter crashed at start (the first answer lost on the way)."""
    if state in (_S.IDLE, _S.PROMPTING):
        return Outcome("done", f"Agent session {agent_session_id} started.")
    if state in (_S.STARTING, _S.RESTARTING):
        return Outcome(
            "wait", f"Agent session {agent_session_id} is {state}.", SESSION_POLL_SECONDS
        )
    if state == _S.CRASHED:
        return await _crashed(deployment, spec, agent_session_id, None)
    if state == _S.STOPPED:
        return Outcome(
            "failed", "The agent was stopped before it started; send your message again."
        )
    return Outcome("failed", f"The agent answered a session in an unknown state ({state}).")


async def _crashed(
    deployment: Deployment, spec: RunSpec, agent_session_id: str, said: str | None
) -> Outcome:
    """The run fails with the session's crash report (its hint and stderr tail) once it has
    reached the chat, else with what the agent answered (`said`: the 502's message, which
    quotes the stderr's last line); with neither, it waits for the report."""
    reason = await crash_reason(deployment, spec, agent_session_id)
    if reason is not None:
        return Outcome("failed", reason)
    if said is not None:
        return Outcome(
            "failed",
            f"The agent could not start: {said}. Fix the cause, then send your message again.",
        )
    detail = f"Agent session {agent_session_id} crashed; waiting for its crash report."
    return Outcome("wait", detail, SESSION_POLL_SECONDS)


async def _linked(
    deployment: Deployment, spec: RunSpec, workspace_id: str, agent_session_id: str
) -> Outcome:
    chat = await chat_data.link(
        deployment, spec.project_id, spec.chat_id, workspace_id, agent_session_id, spec.run_id
    )
    if chat["status"] != ChatStatus.ACTIVE:
        await chat_data.set_status(deployment, spec.project_id, spec.chat_id, ChatStatus.ACTIVE)
    return Outcome("done", "The agent is working on your message.")
