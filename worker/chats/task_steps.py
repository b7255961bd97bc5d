"""A task-mode run's steps after `linked` (worker/chats/steps.py has the ones before), and
the clean-up of a task run that failed.

    await run_step(deployment, step, spec, workspace_id, agent_session_id) -> Outcome
    await cleaned_up(deployment, spec, workspace_id, agent_session_id)

turn_ended: done once the chat holds the agent's turn_ended frame. The ingest of that frame
wakes the run (worker/projects/service.py), so the step looks at once; TURN_POLL_SECONDS is
the fallback for a wake that was lost. A turn that never ends fails the step at its timeout
(worker/chats/run.py), and the run is cleaned up.

push: the node agent commits what is uncommitted and pushes HEAD to the task's branch only
(POST /workspaces/{id}/git/push, wire/git.py), with a contents:write token for that one
repository minted here and sent in the body (never into the container). Run again, the
agent finds the branch holding that commit already and answers it as pushed.

pull_request: the open pull request of the task's branch (a run again after a crash finds
the one it opened), else one opened against the project's branch (the repository's default
without one); its link is kept on the task. GitHub rate-limiting or refusing the App fails
the step with GitHub's reason; a 5xx or an unreachable GitHub is retried with backoff.

Submit refuses a task whose repository is not on the configured GitHub, or a deployment
without the GitHub App (worker/tasks/service.py); should either change while a task runs,
push fails at once, saying so (the task cannot end in a pull request).

posted: the link, as this step's run message in the chat.

finished: the agent session is stopped, the chat is stopped, then the workspace (its files
kept). The chat first: a workspace's stop stops its live chats' runs
(worker/chats/workspace_events.py), and this run must end finished, not stopped. Each part
is idempotent (a stopped session or workspace answers as stopped), so the step runs again
after a crash.
"""

import logging

from wire.chat import MAX_PAGE_MESSAGES, ChatStatus
from wire.git import GitPush, GitPushResult
from worker.auth.users import get_user
from worker.chats import agent_sessions
from worker.chats.run import RunSpec, Step, TaskLink
from worker.chats.steps import Outcome
from worker.deployment import Deployment
from worker.errors import SamError, UpstreamFailed
from worker.github import git_tokens, pulls
from worker.github.app_jwt import GitHubAppNotConfigured
from worker.github.rest import GitHubForbidden, GitHubRateLimited, GitHubRefused
from worker.logs import event
from worker.nodes import service as nodes
from worker.projects import chat_data
from worker.states import WorkspaceStatus
from worker.tasks import store as tasks
from worker.workspaces import agent_client
from worker.workspaces import service as workspaces
from worker.workspaces import store as workspace_store
from worker.workspaces.agent_client import AgentBadAnswer
from worker.workspaces.service import WorkspaceBusy

log = logging.getLogger("sam.task_runner")

STEPS = (Step.TURN_ENDED, Step.PUSH, Step.PULL_REQUEST, Step.POSTED, Step.FINISHED)
# How often turn_ended looks at the chat without being woken (a lost wake-up).
TURN_POLL_SECONDS = 30.0
# How often finished looks at a workspace that cannot be stopped yet (still being made).
STOP_POLL_SECONDS = 5.0

_W = WorkspaceStatus


async def run_step(
    deployment: Deployment, step: Step, spec: RunSpec, workspace_id: str, agent_session_id: str
) -> Outcome:
    assert spec.task is not None, "a task step of a conversation"
    if step == Step.TURN_ENDED:
        return await _turn_ended(deployment, spec)
    if step == Step.PUSH:
        return await _push(deployment, spec, spec.task, workspace_id)
    if step == Step.PULL_REQUEST:
        return await _pull_request(deployment, spec, spec.task)
    if step == Step.POSTED:
        return await _posted(deployment, spec.task)
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


async def _push(
    deployment: Deployment, spec: RunSpec, task: TaskLink, workspace_id: str
) -> Outcome:
    workspace = await workspace_store.find(deployment, workspace_id)
    if workspace is None or workspace.status != _W.RUNNING or workspace.node_id is None:
        state = "gone" if workspace is None else workspace.status
        return Outcome("failed", f"The workspace is {state}: its work could not be pushed.")
    node = await nodes.find_node(deployment, workspace.node_id)
    user = await get_user(deployment.env.DATABASE, spec.user_id)
    if node is None or user is None:
        return Outcome("failed", "The workspace's node or owner is gone: nothing was pushed.")
    try:
        token = await git_tokens.write_token(deployment, spec.user_id, spec.repository)
    except GitHubAppNotConfigured as exc:  # not transient here: no retry configures it
        return Outcome("failed", exc.message)
    body = GitPush(
        branch=task.branch,
        message=f"{task.title}\n\nMade by SAM for task {task.task_id}.",
        remote_url=spec.repository,
        token=token.token,
        author_name=user.name or user.login,
        author_email=user.email or f"{user.login}@users.noreply.github.com",
    )
    path = f"/workspaces/{workspace_id}/git/push"
    answer = await agent_client.call(deployment, node, "POST", path, body)
    if answer.status == 429 or answer.status >= 500:
        raise UpstreamFailed("push_failed", f"The push failed: {answer.message}")
    if answer.status != 200:
        return Outcome("failed", f"The push was refused: {answer.message}")
    try:
        result = GitPushResult.model_validate(answer.body)
    except ValueError:
        raise AgentBadAnswer(node.id, "its push result") from None
    if result.commit is None:
        return Outcome(
            "failed",
            "The agent changed nothing, so there is no branch to push and no pull request to "
            "open. Say more precisely what to change, and submit the task again.",
        )
    return Outcome("done", f"Pushed {result.commit[:12]} to {result.branch}.")


async def _pull_request(deployment: Deployment, spec: RunSpec, task: TaskLink) -> Outcome:
    body = f"{spec.prompt}\n\n---\nOpened by SAM for task {task.task_id}."
    try:
        pull = await pulls.pull_request(
            deployment, spec.user_id, spec.repository, task.branch, spec.branch, task.title, body
        )
    except (GitHubAppNotConfigured, GitHubRateLimited, GitHubForbidden, GitHubRefused) as exc:
        return Outcome("failed", exc.message)
    await tasks.noted(deployment, task.task_id, pull_request_url=pull.url)
    verb = "Opened" if pull.opened else "Found the open"
    return Outcome("done", f"{verb} pull request #{pull.number}: {pull.url}")


async def _posted(deployment: Deployment, task: TaskLink) -> Outcome:
    row = await tasks.TABLE.find(deployment, task.task_id)
    if row is None or row.pull_request_url is None:
        return Outcome("failed", "The task has no pull request to post.")
    return Outcome("done", f"Your pull request: {row.pull_request_url}")


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
