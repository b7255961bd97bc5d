"""Tasks, for the project's owner (anyone else's project or task: the same 404 as a
made-up id).

    await submit(deployment, user, project_id, NewTask(message=…)) -> Task
        in one call: the title (the message's first line), the branch
        `sam/<slug>-<short id>`, the task's chat with the message in it, and its run in task
        mode, in the permission mode for autonomous work (model.autonomous_mode); queued →
        running once the run has started; refused (409 task_cannot_push) when its push
        could never succeed: no GitHub App, or a repository not on the configured GitHub
    await list_tasks(deployment, user, project_id) -> [Task]       oldest first
    await get(deployment, user, task_id) -> Task
    await cancel(deployment, user, task_id) -> Task
        at any step: the run stops (its agent session too), the chat is stopped, the
        workspace is stopped (its files kept); an ended task (completed, failed, or a
        repeated cancel) is answered as it is: its status says how it ended

The task's run reports its steps and its end itself (durable_objects/task_runner.py, into
worker/tasks/store.py).
"""

import logging
from contextlib import suppress

from pydantic import BaseModel, ConfigDict

from wire.agent_session import PermissionMode, PromptText
from worker.auth.users import User
from worker.chats import flow
from worker.chats.run import TaskLink, new_run_id
from worker.deployment import Deployment
from worker.errors import NotFound, SamError
from worker.github.git_tokens import github_repository
from worker.ids import new_id
from worker.logs import event
from worker.projects import store as projects
from worker.states import TaskStatus, WorkspaceStatus
from worker.tasks import store
from worker.tasks.model import (
    TASK_ID,
    Task,
    TaskCannotPush,
    TaskNotFound,
    TaskRow,
    autonomous_mode,
    branch_for,
    new_task_id,
    title_of,
)
from worker.workspaces import service as workspaces

log = logging.getLogger("sam.tasks")

_T = TaskStatus
_STOPPABLE = (WorkspaceStatus.RUNNING, WorkspaceStatus.ERROR, WorkspaceStatus.PENDING)


class NewTask(BaseModel):
    """POST /api/projects/{pid}/tasks."""

    model_config = ConfigDict(extra="forbid")

    message: PromptText
    permission_mode: PermissionMode | None = None  # accept_edits or bypass only


async def submit(deployment: Deployment, user: User, project_id: str, body: NewTask) -> Task:
    project = await projects.get(deployment, user.id, project_id)
    _check_pushable(deployment, project.repository)
    mode = autonomous_mode(project.permission_mode, body.permission_mode)
    task_id = new_task_id()
    title = title_of(body.message)
    link = TaskLink(task_id=task_id, title=title, branch=branch_for(title, task_id))
    row = await store.insert(
        deployment,
        "Submitted.",
        id=task_id,
        project_id=project.id,
        user_id=user.id,
        chat_id=new_id(flow.CHAT_ID_PREFIX),
        run_id=new_run_id(),
        title=title,
        branch=link.branch,
        permission_mode=str(mode),
    )
    try:
        await flow.open_chat(
            deployment,
            user,
            project,
            row.chat_id,
            row.run_id,
            body.message,
            project.agent,
            mode,
            task=link,
        )
    except SamError as exc:
        await store.moved(deployment, task_id, _T.FAILED, exc.message, error=exc.message)
        raise
    await store.moved(deployment, task_id, _T.RUNNING, "Its run started.")
    event(log, "task.submitted", task_id=task_id, project_id=project.id)
    return await _shown(deployment, task_id)


async def list_tasks(deployment: Deployment, user: User, project_id: str) -> list[Task]:
    project = await projects.get(deployment, user.id, project_id)
    return [
        await _with_history(deployment, row)
        for row in await store.for_project(deployment, project.id)
    ]


async def get(deployment: Deployment, user: User, task_id: str) -> Task:
    return await _with_history(deployment, await _owned(deployment, user, task_id))


async def cancel(deployment: Deployment, user: User, task_id: str) -> Task:
    task = await _owned(deployment, user, task_id)
    if task.status not in (_T.QUEUED, _T.RUNNING):  # ended (or a repeat): as it is
        return await _with_history(deployment, task)
    # The task first: its run, stopping, then finds it cancelled (not by a workspace's stop).
    if await store.moved(deployment, task.id, _T.CANCELLED, "Cancelled by you.") is None:
        return await cancel(deployment, user, task_id)  # it moved meanwhile: as it is now
    chat = await flow.stop(deployment, user, task.project_id, task.chat_id)  # run and chat
    await _workspace_stopped(deployment, user, chat["workspace_id"])
    event(log, "task.cancelled", task_id=task.id)
    return await get(deployment, user, task_id)


# --- helpers ----------------------------------------------------------------------------------


def _check_pushable(deployment: Deployment, repository: str) -> None:
    """Refuse before the agent works what its push step would fail at after."""
    if deployment.config.github_app is None:
        raise TaskCannotPush(
            "this deployment has no GitHub App: the operator must set one up "
            "(docs/github-app.md) before tasks can run."
        )
    if github_repository(deployment.config, repository) is None:
        raise TaskCannotPush(
            f"{repository} is not a repository on the configured GitHub "
            f"({deployment.config.github_base_url}): give the project its https URL there."
        )


async def _owned(deployment: Deployment, user: User, task_id: str) -> TaskRow:
    if not TASK_ID.match(task_id):
        raise TaskNotFound()
    return await store.owned(deployment, user.id, task_id)


async def _shown(deployment: Deployment, task_id: str) -> Task:
    row = await store.TABLE.find(deployment, task_id)
    if row is None:
        raise TaskNotFound()
    return await _with_history(deployment, row)


async def _with_history(deployment: Deployment, row: TaskRow) -> Task:
    fields = {**vars(row)}
    fields.pop("user_id")
    return Task(**fields, history=await store.history(deployment, row.id))


async def _workspace_stopped(deployment: Deployment, user: User, workspace_id: str | None) -> None:
    """Stop the task's workspace if it has one that can be stopped (a workspace still being
    made cannot: its run is cancelled, and it stays for the user to stop or delete)."""
    if workspace_id is None:
        return
    with suppress(NotFound):
        workspace = await workspaces.get(deployment, user.id, workspace_id)
        if workspace.status in _STOPPABLE:
            await workspaces.stop(deployment, user.id, workspace_id)
