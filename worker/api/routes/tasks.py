"""Tasks: a message that ends in a pull request (docs/protocols/project-chat.md "Tasks").

For the project's owner (session or API token; anyone else's project or task is the same
404 as a made-up id):
    POST /api/projects/{pid}/tasks  {message, permission_mode?}  → 201 Task (running);
         counted against the workspace_create rate limit, as a new chat
    GET  /api/projects/{pid}/tasks  → {"tasks": [Task]}   oldest first
    GET  /api/tasks/{tid}           → Task (its status, step, history, pull request)
    POST /api/tasks/{tid}/cancel    → Task (cancelled; an ended one as it is)
"""

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from worker.api.deps import CurrentUser, DeploymentDep
from worker.api.ratelimit import WORKSPACE_CREATE, count_accepted, rate_limited
from worker.tasks import service as tasks
from worker.tasks.model import Task
from worker.tasks.service import NewTask

router = APIRouter(tags=["tasks"])


class TaskList(BaseModel):
    tasks: list[Task]


@router.post(
    "/api/projects/{project_id}/tasks",
    status_code=201,
    response_model=Task,
    dependencies=[Depends(rate_limited(WORKSPACE_CREATE))],
)
async def submit(
    project_id: str, body: NewTask, user: CurrentUser, deployment: DeploymentDep
) -> Task:
    task = await tasks.submit(deployment, user, project_id, body)
    await count_accepted(deployment, WORKSPACE_CREATE, user.id)
    return task


@router.get("/api/projects/{project_id}/tasks", response_model=TaskList)
async def index(project_id: str, user: CurrentUser, deployment: DeploymentDep) -> TaskList:
    return TaskList(tasks=await tasks.list_tasks(deployment, user, project_id))


@router.get("/api/tasks/{task_id}", response_model=Task)
async def show(task_id: str, user: CurrentUser, deployment: DeploymentDep) -> Task:
    return await tasks.get(deployment, user, task_id)


@router.post("/api/tasks/{task_id}/cancel", response_model=Task)
async def cancel(task_id: str, user: CurrentUser, deployment: DeploymentDep) -> Task:
    return await tasks.cancel(deployment, user, task_id)
