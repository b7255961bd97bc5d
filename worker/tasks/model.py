"""A task, its id, title and branch, and the permission mode it runs in.

Task(**vars(row), history=[HistoryEntry(...), ...])   what the API answers
title_of("Fix the flaky test\\n\\nIt fails on CI") -> "Fix the flaky test"
branch_for("Fix the flaky test!", "t3f9c…") -> "sam/fix-the-flaky-test-3f9c1a2b"
autonomous_mode(PermissionMode.ASK) -> PermissionMode.ACCEPT_EDITS
"""

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wire.agent_session import PermissionMode
from worker.errors import Conflict, InvalidInput, NotFound
from worker.ids import new_id
from worker.states import TaskStatus

TASK_ID_PREFIX = "t"
TASK_ID = re.compile(r"^t[0-9a-f]{32}$")
TITLE_MAX_CHARS = 80  # the first line of the message, this long at most
SLUG_MAX_CHARS = 40
SHORT_ID_CHARS = 8
BRANCH_PREFIX = "sam/"

# Nobody answers a permission request while a task runs: it runs in a mode that lets the
# agent edit files on its own. The project's mode when it is one of these, else the first.
AUTONOMOUS_MODES = (PermissionMode.ACCEPT_EDITS, PermissionMode.BYPASS)

COLUMNS = (
    "id, project_id, user_id, chat_id, run_id, title, branch, permission_mode, status, step, "
    "pull_request_url, error, created_at, updated_at"
)


class HistoryEntry(BaseModel):
    """One move of a task's status, and why."""

    model_config = ConfigDict(populate_by_name=True)

    from_: TaskStatus | None = Field(alias="from")  # None: the task was made
    to: TaskStatus
    reason: str
    at: str


class Task(BaseModel):
    """A task as the API shows it (docs/protocols/project-chat.md "Tasks")."""

    id: str
    project_id: str
    chat_id: str
    run_id: str
    title: str
    branch: str
    permission_mode: PermissionMode
    status: TaskStatus
    step: str | None  # the run's step now (None before it starts and once it ended)
    pull_request_url: str | None
    error: str | None  # why it failed (and what to do)
    history: list[HistoryEntry]
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class TaskRow:
    id: str
    project_id: str
    user_id: str
    chat_id: str
    run_id: str
    title: str
    branch: str
    permission_mode: str
    status: str
    step: str | None
    pull_request_url: str | None
    error: str | None
    created_at: str
    updated_at: str

    @classmethod
    def from_row(cls, row: Any) -> "TaskRow":
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


class TaskCannotPush(Conflict):
    """A task ends in a pull request: refused at submit when SAM could never push its work."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            "task_cannot_push",
            f"A task ends in a pull request on GitHub, and {reason} Start a chat in this "
            "project instead: its work stays in the workspace.",
        )


class TaskNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__(
            "task_not_found",
            "You have no task with that id; list a project's with GET /api/projects/{id}/tasks.",
        )


class NotAutonomous(InvalidInput):
    def __init__(self, mode: str) -> None:
        names = " or ".join(str(m) for m in AUTONOMOUS_MODES)
        super().__init__(
            "task_permission_mode",
            f"A task runs with nobody to answer the agent's questions, so {mode!r} cannot "
            f"be used: choose {names}.",
        )


def new_task_id() -> str:
    return new_id(TASK_ID_PREFIX)


def title_of(message: str) -> str:
    line = next((line for line in message.splitlines() if line.strip()), message)
    title = " ".join(line.split())
    return title if len(title) <= TITLE_MAX_CHARS else title[: TITLE_MAX_CHARS - 1] + "…"


def branch_for(title: str, task_id: str) -> str:
    """`sam/<slug>-<short id>`: a valid git ref name whatever the title holds."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")[:SLUG_MAX_CHARS]
    slug = slug.strip("-") or "task"
    return f"{BRANCH_PREFIX}{slug}-{task_id[1 : 1 + SHORT_ID_CHARS]}"


def autonomous_mode(project_mode: str, asked: PermissionMode | None = None) -> PermissionMode:
    """The mode a task runs in: the one asked for (only an autonomous one), else the
    project's if it is autonomous, else accept_edits."""
    if asked is not None:
        if asked not in AUTONOMOUS_MODES:
            raise NotAutonomous(asked)
        return asked
    mode = PermissionMode(project_mode)
    return mode if mode in AUTONOMOUS_MODES else AUTONOMOUS_MODES[0]
