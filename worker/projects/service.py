"""Projects for their owner, and the chats under them: what the API's routes call.

    create(deployment, user, spec)               -> Project  (spec as POST /api/projects)
    list_projects(deployment, user_id)           -> [Project]
    get(deployment, user_id, project_id)         -> Project  (anyone else's: ProjectNotFound)
    update(deployment, user, project_id, changes)-> Project
    delete(deployment, user_id, project_id)      its chats and messages go with it
    chats / chat / messages(...)                 the owner's reads of ProjectData
    ingest(deployment, workspace, batch)         a node agent's outbox batch

Only the owner reaches a project or anything under it: every read and write starts from
`get`, whose refusal is the same 404 as for an id that never existed.
"""

import logging
from collections import defaultdict
from typing import Any

from wire.chat import MessageBatch
from worker.auth.users import User
from worker.chats import workspace_events
from worker.deployment import Deployment
from worker.logs import event
from worker.nodes.model import Provider
from worker.nodes.provisioning import check_available
from worker.projects import chat_data, store
from worker.projects.model import (
    InvalidProject,
    Project,
    new_project_id,
    validate_agent,
    validate_branch,
    validate_name,
    validate_node_size,
    validate_permission_mode,
    validate_provider,
    validate_repository,
)
from worker.workspaces import local_paths
from worker.workspaces.model import Workspace
from worker.workspaces.spec import InvalidWorkspaceSpec

log = logging.getLogger("sam.projects")


async def create(deployment: Deployment, user: User, spec: dict[str, Any]) -> Project:
    """A new project of `user`; every field checked before the row exists (400 invalid_project)."""
    provider = validate_provider(spec.get("provider"))
    repository = await _repository(deployment, user, spec.get("repository"), provider)
    project = await store.insert(
        deployment,
        id=new_project_id(),
        user_id=user.id,
        name=validate_name(spec.get("name"), repository),
        repository=repository,
        default_branch=validate_branch(spec.get("default_branch")),
        provider=str(provider),
        node_size=validate_node_size(spec.get("node_size")),
        agent=validate_agent(spec.get("agent")),
        permission_mode=validate_permission_mode(spec.get("permission_mode")),
    )
    event(log, "project.created", project_id=project.id, user=user.id)
    return project


async def list_projects(deployment: Deployment, user_id: str) -> list[Project]:
    return await store.list_for(deployment, user_id)


async def get(deployment: Deployment, user_id: str, project_id: str) -> Project:
    return await store.get(deployment, user_id, project_id)


async def update(
    deployment: Deployment, user: User, project_id: str, changes: dict[str, Any]
) -> Project:
    """The fields given (None: unchanged; a branch or size cannot be cleared to null here)."""
    project = await get(deployment, user.id, project_id)
    given = {name: value for name, value in changes.items() if value is not None}
    if not given:
        return project
    fields: dict[str, Any] = {}
    if "provider" in given:
        provider = validate_provider(given["provider"])
        if provider != project.provider:
            # The repository must still be one the new provider can clone.
            await _repository(deployment, user, project.repository, provider)
        fields["provider"] = str(provider)
    if "name" in given:
        fields["name"] = validate_name(given["name"], project.repository)
    if "default_branch" in given:
        fields["default_branch"] = validate_branch(given["default_branch"])
    if "node_size" in given:
        fields["node_size"] = validate_node_size(given["node_size"])
    if "agent" in given:
        fields["agent"] = validate_agent(given["agent"])
    if "permission_mode" in given:
        fields["permission_mode"] = validate_permission_mode(given["permission_mode"])
    return await store.update(deployment, project, **fields)


async def delete(deployment: Deployment, user_id: str, project_id: str) -> None:
    """The project, its chats and their messages (ProjectData first: the row is what
    names the object, so a failure there leaves the project to delete again)."""
    project = await get(deployment, user_id, project_id)
    chats = await chat_data.delete_project(deployment, project.id)
    await store.delete(deployment, project)
    event(log, "project.deleted", project_id=project.id, chats=chats)


# --- chats ------------------------------------------------------------------------------------


async def chats(deployment: Deployment, user_id: str, project_id: str) -> list[dict]:
    project = await get(deployment, user_id, project_id)
    return await chat_data.list_chats(deployment, project.id)


async def chat(deployment: Deployment, user_id: str, project_id: str, chat_id: str) -> dict:
    project = await get(deployment, user_id, project_id)
    return await chat_data.get_chat(deployment, project.id, chat_id)


async def messages(
    deployment: Deployment,
    user_id: str,
    project_id: str,
    chat_id: str,
    after: int | None,
    before: int | None,
    limit: int,
) -> tuple[list[dict], bool]:
    """A page of the chat's messages in seq order, and whether there are more beyond it
    (older ones for the newest page, when `after` is None; newer ones otherwise)."""
    project = await get(deployment, user_id, project_id)
    page = await chat_data.messages(deployment, project.id, chat_id, after, before, limit + 1)
    if len(page) <= limit:
        return page, False
    return (page[1:] if after is None else page[:limit]), True


async def all_chats(deployment: Deployment, user_id: str) -> list[dict]:
    """Every chat of the user's projects (the D1 index), newest activity first."""
    return await store.chats_for(deployment, user_id)


async def ingest(deployment: Deployment, workspace: Workspace, batch: MessageBatch) -> dict:
    """Store a node agent's outbox batch: each project's messages in one call to its
    ProjectData, which refuses any for a chat not linked to this workspace."""
    by_project: dict[str, list[dict]] = defaultdict(list)
    for message in batch.messages:
        by_project[message.project_id].append(message.model_dump(mode="json"))
    total = {"accepted": 0, "duplicates": 0, "refused": 0}
    for project_id, messages in by_project.items():
        result = await chat_data.ingest(deployment, project_id, workspace.id, messages)
        for name in total:
            total[name] += int(result[name])
    # A task's run waits for its agent's turn to end: it looks now.
    ended = {
        (m.project_id, m.chat_id) for m in batch.messages if m.frame.get("type") == "turn_ended"
    }
    for project_id, chat_id in ended:
        await workspace_events.turn_ended(deployment, workspace.id, project_id, chat_id)
    return total


async def _repository(deployment: Deployment, user: User, value: Any, provider: Provider) -> str:
    repository = validate_repository(value, provider)
    if repository.startswith("/"):
        check_available(deployment, provider)
        try:
            return await local_paths.confined(deployment, user, repository)
        except InvalidWorkspaceSpec as refused:
            raise InvalidProject(
                "repository", refused.message.removeprefix("repository ")
            ) from None
    return repository
