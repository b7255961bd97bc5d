"""What a TaskRunner run is: the spec it starts from, its steps, the controls it delivers,
and the `Run` it reports (GET /api/projects/{pid}/chats/{cid}/run).

    RunSpec.model_validate({"run_id": "r…", "mode": "conversation", "user_id": "u…",
        "project_id": "p…", "chat_id": "c…", "prompt": "Fix the tests", "prompt_id": "p…",
        "agent": "claude-code", "permission_mode": "ask", "repository": "…",
        "branch": "main", "provider": "local", "node_size": None, "context": None})
    Control.model_validate({"id": "p…", "kind": "prompt", "text": "And the docs?"})
"""

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from wire.agent_session import AgentType, PermissionMode, PromptId, PromptText
from wire.chat import ChatId, ProjectId
from worker.ids import new_id
from worker.states import RunStatus

RUN_ID_PREFIX = "r"
AGENT_SESSION_ID_PREFIX = "s"
PROMPT_ID_PREFIX = "p"

# How long each step may take before the run fails for good, and how its retries back off
# (a transient failure: the node's agent unreachable, a 5xx, the node still booting).
STEP_TIMEOUT_SECONDS = {
    "workspace": 5 * 60.0,
    "workspace_ready": 15 * 60.0,  # a new VM, a clone and a devcontainer build
    "agent_session": 5 * 60.0,
    "linked": 5 * 60.0,
    "turn_ended": 60 * 60.0,  # the agent's whole turn on the task: an hour at most
    "push": 10 * 60.0,  # a commit and a push of the checkout
    "pull_request": 10 * 60.0,
    "posted": 5 * 60.0,
    "finished": 5 * 60.0,
}
RETRY_BASE_SECONDS = 1.0
RETRY_MAX_SECONDS = 30.0

RunId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]


class Step(StrEnum):
    WORKSPACE = "workspace"  # workspaces.service.create with the run's chosen workspace id
    WORKSPACE_READY = "workspace_ready"  # the workspace runs (polled by alarm)
    AGENT_SESSION = "agent_session"  # NewAgentSession with the chosen id and the first prompt
    LINKED = "linked"  # ProjectData.link: the chat shows its workspace and session
    # Task mode only (worker/chats/task_steps.py):
    TURN_ENDED = "turn_ended"  # the agent's turn ended (woken by the ingest of its frame)
    PUSH = "push"  # the node agent commits what is uncommitted and pushes the task's branch
    PULL_REQUEST = "pull_request"  # the open one of the branch found, else one opened
    POSTED = "posted"  # the pull request's link in the chat (this step's run message)
    FINISHED = "finished"  # the session and the workspace stopped, the chat too


CONVERSATION_STEPS = (Step.WORKSPACE, Step.WORKSPACE_READY, Step.AGENT_SESSION, Step.LINKED)
TASK_STEPS = (
    *CONVERSATION_STEPS,
    Step.TURN_ENDED,
    Step.PUSH,
    Step.PULL_REQUEST,
    Step.POSTED,
    Step.FINISHED,
)

STEP_TITLES = {
    Step.WORKSPACE: "Creating the workspace",
    Step.WORKSPACE_READY: "Waiting for the workspace to start",
    Step.AGENT_SESSION: "Starting the agent",
    Step.LINKED: "Connecting the chat",
    Step.TURN_ENDED: "Waiting for the agent to finish its turn",
    Step.PUSH: "Committing and pushing the task's branch",
    Step.PULL_REQUEST: "Opening the pull request",
    Step.POSTED: "Posting the pull request's link",
    Step.FINISHED: "Stopping the workspace",
}


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskLink(_Model):
    """A task-mode run's task (worker/tasks/): what its steps after the turn push and open."""

    task_id: str
    title: str
    branch: str  # sam/<slug>-<short id>: the only ref its push may write


class RunSpec(_Model):
    """TaskRunner.start's `run`: everything the steps need, so the object reads no project."""

    run_id: RunId
    mode: Literal["conversation", "task"] = "conversation"
    task: TaskLink | None = None  # task mode's task
    user_id: str
    project_id: ProjectId
    chat_id: ChatId
    prompt: PromptText  # the user's message as they typed it (shown in the chat)
    prompt_id: PromptId
    context: str | None = None  # the previous conversation (context.py), before the prompt
    agent: AgentType = "claude-code"
    permission_mode: PermissionMode = PermissionMode.ASK
    repository: str
    branch: str | None = None
    provider: str
    node_size: str | None = None


class Control(_Model):
    """TaskRunner.deliver's `control`: persisted, then delivered to the agent session."""

    id: PromptId  # a prompt's id (the agent dedupes by it); any unique id for the others
    kind: Literal["prompt", "stop", "permission"]
    text: PromptText | None = None  # prompt
    request_id: str | None = Field(default=None, max_length=128)  # permission
    option_id: str | None = Field(default=None, max_length=128)  # permission


class StepReport(_Model):
    name: Step
    status: Literal["pending", "running", "succeeded", "failed"]
    attempts: int
    detail: str | None  # the last error while retrying, or what the step made


class Run(_Model):
    """A run as TaskRunner.status reports it."""

    run_id: RunId
    mode: Literal["conversation", "task"]
    project_id: ProjectId
    chat_id: ChatId
    status: RunStatus
    step: Step | None  # the step running now (None once active or ended)
    steps: list[StepReport]
    workspace_id: str | None
    agent_session_id: str | None
    error: str | None  # why it failed (and what to do), or why it stopped
    pending_controls: int  # accepted by the API, not yet taken by the agent
    created_at: float
    updated_at: float


def steps_of(mode: str) -> tuple[Step, ...]:
    """A run's steps in order: a conversation's stop once the chat is linked; a task's go on
    until its workspace is stopped."""
    return TASK_STEPS if mode == "task" else CONVERSATION_STEPS


def new_run_id() -> str:
    return new_id(RUN_ID_PREFIX)


def new_agent_session_id() -> str:
    return new_id(AGENT_SESSION_ID_PREFIX)


def new_prompt_id() -> str:
    return new_id(PROMPT_ID_PREFIX)


def retry_delay_seconds(attempts: int) -> float:
    """Exponential backoff from RETRY_BASE_SECONDS, capped at RETRY_MAX_SECONDS."""
    return min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS)
