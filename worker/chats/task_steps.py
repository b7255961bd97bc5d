"""A task-mode run's steps after `linked` (worker/chats/steps.py has the ones before), and
the clean-up of a task run that failed or was cancelled.

    await run_step(deployment, step, spec, workspace_id, agent_session_id) -> Outcome
    await cleaned_up(deployment, spec, workspace_id, agent_session_id)

turn_ended: done once the chat holds the agent's turn_ended frame. The ingest of that frame
wakes the run (worker/projects/service.py), so the step looks at once; TURN_POLL_SECONDS is
the fallback for a wake that was lost. A turn that never ends fails the step at its timeout
(worker/chats/run.py), and the run is cleaned up.

finished: the agent session is stopped, the chat is stopped, then the workspace (its files
kept). The chat first: a workspace's stop stops its live chats' runs
(worker/chats/workspace_events.py), and this run must end finished, not stopped. Each part
is idempotent (a stopped session or workspace answers as stopped), so the step runs again
after a crash.
"""

import logging

from wire.chat import MAX_PAGE_MESSAGES, ChatStatus
from worker.chats import agent_sessions
from worker.chats.run import RunSpec, Step
from worker.chats.steps import Outcome
from worker.deployment import Deployment
from worker.errors import SamError
from worker.logs import event
from worker.projects import chat_data
from worker.states import WorkspaceStatus
from worker.workspaces import service as workspaces
from worker.workspaces.service import WorkspaceBusy

log = logging.getLogger("sam.task_runner")

STEPS = (Step.TURN_ENDED, Step.FINISHED)
# How often turn_ended looks at the chat without being woken (a lost wake-up).
TURN_POLL_SECONDS = 30.0
# How often finished looks at a workspace that cannot be stopped yet (still being made).
STOP_POLL_SECONDS = 5.0

_W = WorkspaceStatus


async def run_step(
    deployment: Deployment, step: Step, spec: RunSpec, workspace_id: str, agent_session_id: str
) -> Outcome:
    if step == Step.TURN_ENDED:
        return await _turn_ended(deployment, spec)
    assert step == Step.FINISHED, step
    return await _finished(deployment, spec, workspace_id, agent_session_id)


async def cleaned_up(
    deployment: Deployment, spec: RunSpec, workspace_id: str, agent_session_id: str
) -> None:
    """Best effort after a failure: the session and the workspace stopped if they can be
    (a failure here is logged; the workspace stays for its owner to stop or delete)."""
    try:
        await _finished(deployment, spec, workspace_id, agent_session_id)
    except SamError as exc:
        event(log, "task.cleanup_failed", level=logging.WARNING, run_id=spec.run_id, error=exc.code)


async def _turn_ended(deployment: Deployment, spec: RunSpec) -> Outcome:
    # The turn's end is the newest message or close to it: the newest page is enough.
    page = await chat_data.messages(
        deployment, spec.project_id, spec.chat_id, None, None, MAX_PAGE_MESSAGES
    )
    ended = [m["frame"] for m in page if m["frame"].get("type") == "turn_ended"]
    if ended:
        return Outcome("done", f"The agent's turn ended ({ended[-1]['stop_reason']}).")
    return Outcome("wait", "The agent is working on the task.", TURN_POLL_SECONDS)


async def _finished(
    deployment: Deployment, spec: RunSpec, workspace_id: str, agent_session_id: str
) -> Outcome:
    workspace = await workspaces.find_workspace(deployment, workspace_id)
    if workspace is None:  # never made, or deleted: nothing to stop
        return Outcome("done", "There was no workspace to stop.")
    # Answered as gone when the session (or the workspace) has ended already.
    await agent_sessions.stop(deployment, workspace_id, agent_session_id)
    chat = await chat_data.get_chat(deployment, spec.project_id, spec.chat_id)
    if chat["status"] in (ChatStatus.STARTING, ChatStatus.ACTIVE):
        await chat_data.set_status(
            deployment, spec.project_id, spec.chat_id, str(ChatStatus.STOPPED)
        )
    if workspace.status == _W.STOPPED:
        return Outcome("done", f"Workspace {workspace_id} is stopped.")
    waiting = Outcome("wait", f"Workspace {workspace_id} is {workspace.status}.", STOP_POLL_SECONDS)
    if workspace.status in (_W.CREATING, _W.STOPPING):
        return waiting
    try:
        await workspaces.stop(deployment, spec.user_id, workspace_id)
    except WorkspaceBusy:  # it moved on meanwhile (being made again): look again later
        return waiting
    return Outcome("done", f"Workspace {workspace_id} stopped; its files are kept.")
