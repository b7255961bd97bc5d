"""The `workspaces` table: the only module that writes it (through worker/db.py).

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

from typing import Any

from worker.db import GuardedTable, iso
from worker.deployment import Deployment
from worker.errors import NotFound
from worker.states import Kind, WorkspaceStatus
from worker.workspaces.model import COLUMNS, WORKSPACE_ID, Workspace

MAX_ERROR_CHARS = 1000


class WorkspaceNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("workspace_not_found", "You have no workspace with that id.")


WORKSPACES = GuardedTable(
    "workspaces", COLUMNS, Kind.WORKSPACE, Workspace.from_row, WorkspaceNotFound
)
where = WORKSPACES.where
update = WORKSPACES.update
remove = WORKSPACES.delete


async def find(deployment: Deployment, workspace_id: str) -> Workspace | None:
    if not WORKSPACE_ID.match(workspace_id):
        return None  # never a query for something that cannot be an id
    return await WORKSPACES.find(deployment, workspace_id)


async def get(deployment: Deployment, user_id: str, workspace_id: str) -> Workspace:
    workspace = await find(deployment, workspace_id)
    if workspace is None or workspace.user_id != user_id:
        raise WorkspaceNotFound()
    return workspace


async def list_for(deployment: Deployment, user_id: str) -> list[Workspace]:
    return await where(deployment, "user_id = ? ORDER BY created_at, id", user_id)


async def insert(
    deployment: Deployment,
    workspace_id: str,
    user_id: str,
    name: str,
    repository: str,
    branch: str | None,
    provider: str,
    size: str | None,
    trusted_devcontainer: bool = False,
) -> Workspace:
    return await WORKSPACES.insert(
        deployment,
        id=workspace_id,
        user_id=user_id,
        name=name,
        repository=repository,
        branch=branch,
        status=str(WorkspaceStatus.PENDING),
        provider=provider,
        size=size,
        trusted_devcontainer=int(trusted_devcontainer),
        provisioning_since=iso(deployment.now()),
    )


async def set_status(
    deployment: Deployment, workspace: Workspace, new: WorkspaceStatus, **fields: Any
) -> Workspace:
    """`workspace` moved to `new`, with `fields` written alongside; racing changes are
    refused as an illegal transition would be (worker/db.py)."""
    return await WORKSPACES.set_status(deployment, workspace, new, **_capped(fields))


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
    return await WORKSPACES.move(deployment, workspace_id, from_states, new, **_capped(fields))


def _capped(fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("error_message") is not None:
        fields["error_message"] = str(fields["error_message"])[:MAX_ERROR_CHARS]
    return fields
