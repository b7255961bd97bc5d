"""The `tasks` and `task_history` tables of D1: the only module that writes them.

await insert(deployment, reason, **values) -> TaskRow      queued, its first history entry
await owned(deployment, user_id, task_id) -> TaskRow       anyone else's: TaskNotFound
await for_project(deployment, project_id) -> [TaskRow]     oldest first
await for_run(deployment, run_id) -> TaskRow | None
await moved(deployment, task_id, new, reason, **fields) -> TaskRow | None
    the status change checked by worker/states.py, with its history entry (None: the
    task cannot become `new` from where it is, e.g. it has ended)
await noted(deployment, task_id, **fields)                 the step or the PR link
await history(deployment, task_id) -> [HistoryEntry]
"""

from typing import Any

from worker.db import GuardedTable, iso
from worker.deployment import Deployment
from worker.states import Kind, TaskStatus, allowed
from worker.tasks.model import COLUMNS, HistoryEntry, TaskNotFound, TaskRow

TABLE = GuardedTable("tasks", COLUMNS, Kind.TASK, TaskRow.from_row, TaskNotFound)


async def insert(deployment: Deployment, reason: str, **values: Any) -> TaskRow:
    task = await TABLE.insert(deployment, status=str(TaskStatus.QUEUED), **values)
    await _remember(deployment, task.id, None, TaskStatus.QUEUED, reason)
    return task


async def owned(deployment: Deployment, user_id: str, task_id: str) -> TaskRow:
    return await TABLE.owned(deployment, user_id, task_id)


async def for_project(deployment: Deployment, project_id: str) -> list[TaskRow]:
    return await TABLE.where(deployment, "project_id = ? ORDER BY created_at, id", project_id)


async def moved(
    deployment: Deployment, task_id: str, new: TaskStatus, reason: str, **fields: Any
) -> TaskRow | None:
    """The task → `new`, from the state it is in; None if that state cannot become `new`
    (it has ended, or is there already). Guarded: a racing move is seen, and looked at again."""
    while True:
        task = await TABLE.find(deployment, task_id)
        if task is None:
            raise TaskNotFound()
        if not allowed(Kind.TASK, task.status, new):
            return None
        after = await TABLE.move(deployment, task.id, (task.status,), new, **fields)
        if after is not None:
            await _remember(deployment, task.id, TaskStatus(task.status), new, reason)
            return after


async def noted(deployment: Deployment, task_id: str, **fields: Any) -> None:
    await TABLE.update(deployment, task_id, **fields)


async def history(deployment: Deployment, task_id: str) -> list[HistoryEntry]:
    rows = (
        await deployment.env.DATABASE.prepare(
            "SELECT from_status, to_status, reason, at FROM task_history "
            "WHERE task_id = ? ORDER BY seq"
        )
        .bind(task_id)
        .all()
    )
    return [
        HistoryEntry(
            from_=row["from_status"], to=row["to_status"], reason=row["reason"], at=row["at"]
        )
        for row in rows.results
    ]


async def _remember(
    deployment: Deployment,
    task_id: str,
    old: TaskStatus | None,
    new: TaskStatus,
    reason: str,
) -> None:
    await (
        deployment.env.DATABASE.prepare(
            "INSERT INTO task_history (task_id, seq, from_status, to_status, reason, at) "
            "SELECT ?, coalesce(max(seq), 0) + 1, ?, ?, ?, ? FROM task_history WHERE task_id = ?"
        )
        .bind(
            task_id,
            None if old is None else str(old),
            str(new),
            reason,
            iso(deployment.now()),
            task_id,
        )
        .run()
    )
