"""The `workspaces` table: the only module that writes it.

find(deployment, id)                       any user's (callbacks, the proxy, cron)
get(deployment, user_id, id)               the owner's; anyone else's is a 404 like a made-up id
list_for(deployment, user_id)              the owner's, oldest first
where(deployment, condition, *bindings)    every user's matching a fixed SQL fragment (cron)
insert(deployment, workspace fields)       a new pending row
set_status(deployment, ws, new, **fields)  a guarded state change (worker.states decides)
move(deployment, id, from_states, new)     the same, only from `from_states` (else None)
update(deployment, id, **fields)           fields without a state change
remove(deployment, id)
"""

import logging
from typing import Any

from worker.deployment import Deployment
from worker.errors import NotFound
from worker.logs import event
from worker.nodes.model import iso
from worker.states import Kind, WorkspaceStatus, sources, transition
from worker.workspaces.model import COLUMNS, WORKSPACE_ID, Workspace

log = logging.getLogger("sam.workspaces")
MAX_ERROR_CHARS = 1000


class WorkspaceNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("workspace_not_found", "You have no workspace with that id.")


async def find(deployment: Deployment, workspace_id: str) -> Workspace | None:
    if not WORKSPACE_ID.match(workspace_id):
        return None  # never a query for something that cannot be an id
    row = (
        await deployment.env.DATABASE.prepare(f"SELECT {COLUMNS} FROM workspaces WHERE id = ?")
        .bind(workspace_id)
        .first()
    )
    return None if row is None else Workspace.from_row(row)


async def get(deployment: Deployment, user_id: str, workspace_id: str) -> Workspace:
    workspace = await find(deployment, workspace_id)
    if workspace is None or workspace.user_id != user_id:
        raise WorkspaceNotFound()
    return workspace


async def list_for(deployment: Deployment, user_id: str) -> list[Workspace]:
    return await where(deployment, "user_id = ? ORDER BY created_at, id", user_id)


async def where(deployment: Deployment, condition: str, *bindings: Any) -> list[Workspace]:
    statement = deployment.env.DATABASE.prepare(
        f"SELECT {COLUMNS} FROM workspaces WHERE {condition}"
    )
    result = await (statement.bind(*bindings) if bindings else statement).all()
    return [Workspace.from_row(row) for row in result["results"]]


async def insert(
    deployment: Deployment,
    workspace_id: str,
    user_id: str,
    name: str,
    repository: str,
    branch: str | None,
    provider: str,
    size: str | None,
) -> Workspace:
    moment = iso(deployment.now())
    row = (
        await deployment.env.DATABASE.prepare(
            "INSERT INTO workspaces (id, user_id, name, repository, branch, status, provider, "
            "size, provisioning_since, created_at, updated_at) "
            f"VALUES (?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?) RETURNING {COLUMNS}"
        )
        .bind(
            workspace_id, user_id, name, repository, branch, provider, size, moment, moment, moment
        )
        .first()
    )
    return Workspace.from_row(row)


async def set_status(
    deployment: Deployment, workspace: Workspace, new: WorkspaceStatus, **fields: Any
) -> Workspace:
    """`workspace` moved to `new`, with `fields` written alongside.

    Guarded by the states allowed to become `new`, so of two racing changes only one
    applies; the other gets the same InvalidTransition as an illegal one.
    """
    transition(Kind.WORKSPACE, workspace.status, new)
    if "error_message" in fields and fields["error_message"] is not None:
        fields["error_message"] = str(fields["error_message"])[:MAX_ERROR_CHARS]
    assignments = "".join(f", {name} = ?" for name in fields)
    allowed = sources(Kind.WORKSPACE, new)
    marks = ", ".join("?" * len(allowed))
    row = (
        await deployment.env.DATABASE.prepare(
            f"UPDATE workspaces SET status = ?, updated_at = ?{assignments} "
            f"WHERE id = ? AND status IN ({marks}) RETURNING {COLUMNS}"
        )
        .bind(str(new), iso(deployment.now()), *fields.values(), workspace.id, *allowed)
        .first()
    )
    if row is None:
        current = await find(deployment, workspace.id)
        if current is None:
            raise WorkspaceNotFound()
        transition(Kind.WORKSPACE, current.status, new)  # raises: someone moved it first
        raise AssertionError("a guarded workspace update matched nothing")  # pragma: no cover
    event(log, "workspace.status", workspace_id=workspace.id, status=new)
    return Workspace.from_row(row)


async def move(
    deployment: Deployment,
    workspace_id: str,
    from_states: tuple[WorkspaceStatus, ...],
    new: WorkspaceStatus,
    **fields: Any,
) -> Workspace | None:
    """Move to `new` only if the workspace is in one of `from_states`; None if it is not.

    For changes that answer an event (a callback, a dispatch's answer) rather than a
    request: when the workspace has moved on meanwhile, the event is simply stale.
    """
    for state in from_states:
        transition(Kind.WORKSPACE, state, new)  # a programming error if not allowed
    if fields.get("error_message") is not None:
        fields["error_message"] = str(fields["error_message"])[:MAX_ERROR_CHARS]
    assignments = "".join(f", {name} = ?" for name in fields)
    marks = ", ".join("?" * len(from_states))
    row = (
        await deployment.env.DATABASE.prepare(
            f"UPDATE workspaces SET status = ?, updated_at = ?{assignments} "
            f"WHERE id = ? AND status IN ({marks}) RETURNING {COLUMNS}"
        )
        .bind(
            str(new), iso(deployment.now()), *fields.values(), workspace_id, *map(str, from_states)
        )
        .first()
    )
    if row is None:
        return None
    event(log, "workspace.status", workspace_id=workspace_id, status=new)
    return Workspace.from_row(row)


async def update(deployment: Deployment, workspace_id: str, **fields: Any) -> None:
    assignments = ", ".join(f"{name} = ?" for name in fields)
    await (
        deployment.env.DATABASE.prepare(
            f"UPDATE workspaces SET {assignments}, updated_at = ? WHERE id = ?"
        )
        .bind(*fields.values(), iso(deployment.now()), workspace_id)
        .run()
    )


async def remove(deployment: Deployment, workspace_id: str) -> None:
    await (
        deployment.env.DATABASE.prepare("DELETE FROM workspaces WHERE id = ?")
        .bind(workspace_id)
        .run()
    )
