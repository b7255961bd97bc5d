"""A project, its id, its errors, and the rules for what a user may make one of.

The repository, branch, name and size follow the workspace spec's rules
(worker/workspaces/spec.py, over wire/repo_rules.py); the agent type and permission mode
are the agent session's (wire/agent_session.py), so a project never holds defaults that a
chat's workspace or agent would then refuse.
"""

import re
from dataclasses import dataclass
from typing import Any

from wire.agent_session import AGENT_TYPE_PATTERN, PermissionMode
from wire.chat import ID_PATTERN
from worker.errors import InvalidInput, NotFound
from worker.ids import new_id
from worker.nodes.model import Provider
from worker.workspaces import spec
from worker.workspaces.spec import InvalidWorkspaceSpec

DEFAULT_AGENT = "claude-code"
DEFAULT_PERMISSION_MODE = PermissionMode.ASK
DEFAULT_PROVIDER = Provider.LOCAL
PROJECT_ID = re.compile(ID_PATTERN)
_AGENT_TYPE = re.compile(AGENT_TYPE_PATTERN)

COLUMNS = (
    "id, user_id, name, repository, default_branch, provider, node_size, agent, "
    "permission_mode, created_at, updated_at"
)


def new_project_id() -> str:
    return new_id("p")


@dataclass(frozen=True)
class Project:
    id: str
    user_id: str
    name: str
    repository: str
    default_branch: str | None
    provider: str
    node_size: str | None
    agent: str
    permission_mode: str
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Any) -> "Project":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


class ProjectNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__(
            "project_not_found",
            "You have no project with that id; list yours with GET /api/projects.",
        )


class InvalidProject(InvalidInput):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__("invalid_project", f"{field} {problem}.")
        self.field = field


def _as_project_error(refused: InvalidWorkspaceSpec, field: str | None = None) -> InvalidProject:
    problem = refused.message.removeprefix(f"{refused.field} ").removesuffix(".")
    return InvalidProject(field or refused.field, problem)


def validate_provider(value: Any) -> Provider:
    if value is None:
        return DEFAULT_PROVIDER
    try:
        return Provider(value)
    except ValueError:
        raise InvalidProject("provider", f"must be one of {', '.join(Provider)}") from None


def validate_repository(value: Any, provider: Provider) -> str:
    try:
        return spec.validate_repository(value, provider)
    except InvalidWorkspaceSpec as refused:
        raise _as_project_error(refused) from None


def validate_branch(value: Any) -> str | None:
    try:
        return spec.validate_branch(value)
    except InvalidWorkspaceSpec as refused:
        raise _as_project_error(refused, "default_branch") from None


def validate_name(value: Any, repository: str) -> str:
    try:
        return spec.validate_name(value, repository)
    except InvalidWorkspaceSpec as refused:
        raise _as_project_error(refused) from None


def validate_node_size(value: Any) -> str | None:
    try:
        return spec.validate_size(value)
    except InvalidWorkspaceSpec as refused:
        raise _as_project_error(refused, "node_size") from None


def validate_agent(value: Any) -> str:
    if value is None:
        return DEFAULT_AGENT
    if not isinstance(value, str) or not _AGENT_TYPE.match(value):
        raise InvalidProject(
            "agent", "must be an agent type such as 'claude-code' (lowercase letters, digits, -)"
        )
    return value


def validate_permission_mode(value: Any) -> str:
    if value is None:
        return str(DEFAULT_PERMISSION_MODE)
    try:
        return str(PermissionMode(value))
    except ValueError:
        raise InvalidProject(
            "permission_mode", f"must be one of {', '.join(PermissionMode)}"
        ) from None
