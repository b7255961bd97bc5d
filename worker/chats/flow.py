"""The chat flow, for the project's owner (anyone else's project or chat: the same 404 as a
made-up id).

    await new_chat(deployment, user, project_id, NewChat(message=…)) -> ChatInfo dict
        the chat (starting), the user's message in it at once, a run started for it
    await open_chat(deployment, user, project, chat_id, run_id, message, agent, mode, task?)
        the same with the ids chosen by the caller, in task mode with `task` (worker/tasks/)
    await follow_up(deployment, user, project_id, chat_id, text) -> ChatMessage dict
        the user's message in the chat at once; delivered to the chat's live run, or, when
        the chat's run has ended (stopped, failed, its workspace stopped or deleted), a fresh
        run whose first prompt carries the earlier conversation (context.py)
    await stop(deployment, user, project_id, chat_id) -> ChatInfo dict
    await answer_permission(deployment, user, project_id, chat_id, request_id, option_id)
    await run_of(deployment, user, project_id, chat_id) -> Run dict

The user's message is stored under `prompt:{prompt_id}`, the id the agent's echo of the
same prompt gets (wire/chat.py `message_id`), so it shows once.
"""

from contextlib import suppress
from typing import Any

from pydantic import BaseModel, ConfigDict

from wire.agent_session import AgentType, PermissionMode, PromptText
from wire.chat import MAX_PAGE_MESSAGES, ChatMessage, ChatStatus
from worker.auth.users import User
from worker.chats import runner
from worker.chats.context import transcript
from worker.chats.run import Control, RunSpec, TaskLink, new_prompt_id, new_run_id
from worker.deployment import Deployment
from worker.errors import Conflict, NotFound
from worker.ids import new_id
from worker.projects import chat_data
from worker.projects import store as projects
from worker.projects.model import Project
from worker.states import RunStatus

CHAT_ID_PREFIX = "c"
CONTROL_ID_PREFIX = "k"
TOPIC_MAX_CHARS = 80  # a chat's topic: the first line of its first message, this long at most
# How many pages of history a fresh run's context is read from (the newest are kept).
CONTEXT_MAX_PAGES = 40

_LIVE_RUN = (RunStatus.STARTING, RunStatus.ACTIVE)
_LIVE_CHAT = (ChatStatus.STARTING, ChatStatus.ACTIVE)


class NewChat(BaseModel):
    """POST /api/projects/{pid}/chats: the first message; agent and mode default to the
    project's."""

    model_config = ConfigDict(extra="forbid")

    message: PromptText
    agent: AgentType | None = None
    permission_mode: PermissionMode | None = None


class ChatNotRunning(Conflict):
    def __init__(self, chat_id: str) -> None:
        super().__init__(
            "chat_not_running",
            f"Chat {chat_id} has no running agent (its permission requests ended with it); "
            "send a message to start it again.",
        )


class NoRun(NotFound):
    def __init__(self, chat_id: str) -> None:
        super().__init__("run_not_found", f"Chat {chat_id} has no run yet.")


async def new_chat(deployment: Deployment, user: User, project_id: str, body: NewChat) -> dict:
    project = await projects.get(deployment, user.id, project_id)
    agent = body.agent or project.agent
    mode = body.permission_mode or PermissionMode(project.permission_mode)
    chat_id = new_id(CHAT_ID_PREFIX)
    await open_chat(deployment, user, project, chat_id, new_run_id(), body.message, agent, mode)
    return await chat_data.get_chat(deployment, project.id, chat_id)


async def open_chat(
    deployment: Deployment,
    user: User,
    project: Project,
    chat_id: str,
    run_id: str,
    message: str,
    agent: str,
    permission_mode: PermissionMode,
    task: TaskLink | None = None,
) -> dict:
    """The chat, the user's message in it and its run (in task mode with `task`): the Run."""
    topic = topic_of(message) if task is None else task.title
    await chat_data.create_chat(deployment, project.id, chat_id, user.id, topic)
    prompt_id = new_prompt_id()
    await _add_prompt(deployment, project.id, chat_id, message, prompt_id)
    return await _start_run(
        deployment,
        user,
        project,
        chat_id,
        message,
        prompt_id,
        None,
        agent,
        permission_mode,
        run_id=run_id,
        task=task,
    )


async def follow_up(
    deployment: Deployment, user: User, project_id: str, chat_id: str, text: str
) -> dict:
    project, chat = await _owned_chat(deployment, user, project_id, chat_id)
    prompt_id = new_prompt_id()
    message = await _add_prompt(deployment, project.id, chat_id, text, prompt_id)
    if await _delivered(deployment, chat, Control(id=prompt_id, kind="prompt", text=text)):
        return message
    context = await _context(deployment, project.id, chat_id, exclude_id=message["id"])
    mode = PermissionMode(project.permission_mode)
    await _start_run(
        deployment,
        user,
        project,
        chat_id,
        text,
        prompt_id,
        context,
        project.agent,
        mode,
        run_id=new_run_id(),
    )
    return message


async def stop(deployment: Deployment, user: User, project_id: str, chat_id: str) -> dict:
    """The chat's agent session is stopped (by its run, retried until the agent answers) and
    the chat is stopped at once; a later message starts a fresh run."""
    project, chat = await _owned_chat(deployment, user, project_id, chat_id)
    if chat["run_id"] is not None:
        with suppress(NotFound, Conflict):  # no such run, or it has ended: nothing to stop
            await runner.cancel(deployment, chat["run_id"])
    if chat["status"] in _LIVE_CHAT:
        await chat_data.set_status(deployment, project.id, chat_id, str(ChatStatus.STOPPED))
    return await chat_data.get_chat(deployment, project.id, chat_id)


async def answer_permission(
    deployment: Deployment,
    user: User,
    project_id: str,
    chat_id: str,
    request_id: str,
    option_id: str,
) -> None:
    """Only an active run's agent can have asked: anything else has no request to answer."""
    _, chat = await _owned_chat(deployment, user, project_id, chat_id)
    run = None if chat["run_id"] is None else await runner.status(deployment, chat["run_id"])
    if run is None or run["status"] != RunStatus.ACTIVE:
        raise ChatNotRunning(chat_id)
    control = Control(
        id=new_id(CONTROL_ID_PREFIX),
        kind="permission",
        request_id=request_id,
        option_id=option_id,
    )
    if not await _delivered(deployment, chat, control):
        raise ChatNotRunning(chat_id)


async def run_of(deployment: Deployment, user: User, project_id: str, chat_id: str) -> dict:
    _, chat = await _owned_chat(deployment, user, project_id, chat_id)
    run = None if chat["run_id"] is None else await runner.status(deployment, chat["run_id"])
    if run is None:
        raise NoRun(chat_id)
    return run


def topic_of(message: str) -> str:
    line = next((line for line in message.splitlines() if line.strip()), message)
    topic = " ".join(line.split())
    return topic if len(topic) <= TOPIC_MAX_CHARS else topic[: TOPIC_MAX_CHARS - 1] + "…"


# --- helpers ----------------------------------------------------------------------------------


async def _owned_chat(
    deployment: Deployment, user: User, project_id: str, chat_id: str
) -> tuple[Project, dict[str, Any]]:
    project = await projects.get(deployment, user.id, project_id)
    return project, await chat_data.get_chat(deployment, project.id, chat_id)


async def _add_prompt(
    deployment: Deployment, project_id: str, chat_id: str, text: str, prompt_id: str
) -> dict:
    frame = {"type": "prompt", "text": text, "prompt_id": prompt_id}
    message = await chat_data.add_message(
        deployment, project_id, chat_id, f"prompt:{prompt_id}", frame
    )
    assert message is not None, "a new prompt id cannot be a duplicate"
    return message


async def _delivered(deployment: Deployment, chat: dict[str, Any], control: Control) -> bool:
    """Whether the chat's run is live and has taken `control` (it delivers it durably)."""
    if chat["run_id"] is None or chat["status"] not in _LIVE_CHAT:
        return False
    try:
        run = await runner.deliver(deployment, chat["run_id"], control)
    except (Conflict, NotFound):  # the run has ended (or is unknown here)
        return False
    return run["status"] in _LIVE_RUN


async def _start_run(
    deployment: Deployment,
    user: User,
    project: Project,
    chat_id: str,
    prompt: str,
    prompt_id: str,
    context: str | None,
    agent: str,
    permission_mode: PermissionMode,
    *,
    run_id: str,
    task: TaskLink | None = None,
) -> dict:
    spec = RunSpec(
        run_id=run_id,
        mode="conversation" if task is None else "task",
        task=task,
        user_id=user.id,
        project_id=project.id,
        chat_id=chat_id,
        prompt=prompt,
        prompt_id=prompt_id,
        context=context,
        agent=agent,
        permission_mode=permission_mode,
        repository=project.repository,
        branch=project.default_branch,
        provider=project.provider,
        node_size=project.node_size,
    )
    run = await runner.start(deployment, spec)
    # Linked at once to the ids the run chose: a follow-up while it starts finds it, and
    # the agent's messages are accepted from the moment its session exists.
    await chat_data.link(
        deployment, project.id, chat_id, run["workspace_id"], run["agent_session_id"], spec.run_id
    )
    await chat_data.set_status(deployment, project.id, chat_id, str(ChatStatus.STARTING))
    return run


async def _context(
    deployment: Deployment, project_id: str, chat_id: str, exclude_id: str
) -> str | None:
    """The chat's history read page by page (CONTEXT_MAX_PAGES at most), as a transcript."""
    history: list[ChatMessage] = []
    after = 0
    for _ in range(CONTEXT_MAX_PAGES):
        page = await chat_data.messages(
            deployment, project_id, chat_id, after, None, MAX_PAGE_MESSAGES
        )
        history.extend(ChatMessage.model_validate(item) for item in page)
        if len(page) < MAX_PAGE_MESSAGES:
            break
        after = page[-1]["seq"]
    return transcript(history, exclude_id=exclude_id)
