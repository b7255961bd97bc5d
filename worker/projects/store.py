"""The `projects` and `chats` tables of D1: the only module that writes them.

`chats` is an index of each project's chats for lists across projects; the truth is the
project's ProjectData object, which calls `mirror_chat` (never once per message: see
durable_objects/project_data.py). A mirror carries the chat's `version` there, and a row
is only ever replaced by a newer one, so mirrors that race cannot move it backwards.
"""

from datetime import datetime
from typing import Any

from worker.db import iso, owned_rows
from worker.deployment import Deployment
from worker.projects.model import COLUMNS, PROJECT_ID, Project, ProjectNotFound

CHAT_COLUMNS = (
    "id, project_id, topic, status, workspace_id, agent_session_id, run_id, message_count, "
    "last_seq, created_at, last_activity_at"
)
# Every listed column may be changed by PATCH /api/projects/{id}.
UPDATABLE = frozenset(
    {"name", "default_branch", "provider", "node_size", "agent", "permission_mode"}
)


async def insert(deployment: Deployment, **values: Any) -> Project:
    now = iso(deployment.now())
    values = {**values, "created_at": now, "updated_at": now}
    names = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    row = (
        await deployment.env.DATABASE.prepare(
            f"INSERT INTO projects ({names}) VALUES ({marks}) RETURNING {COLUMNS}"
        )
        .bind(*values.values())
        .first()
    )
    return Project.from_row(row)


async def get(deployment: Deployment, user_id: str, project_id: str) -> Project:
    """The owner's project; anyone else's is the same ProjectNotFound as a made-up id."""
    if not PROJECT_ID.match(project_id):
        raise ProjectNotFound()
    row = (
        await deployment.env.DATABASE.prepare(
            f"SELECT {COLUMNS} FROM projects WHERE id = ? AND user_id = ?"
        )
        .bind(project_id, user_id)
        .first()
    )
    if row is None:
        raise ProjectNotFound()
    return Project.from_row(row)


async def list_for(deployment: Deployment, user_id: str) -> list[Project]:
    return await owned_rows(deployment, "projects", COLUMNS, user_id, Project.from_row)


async def update(deployment: Deployment, project: Project, **fields: Any) -> Project:
    assert fields and set(fields) <= UPDATABLE, f"not updatable: {set(fields) - UPDATABLE}"
    assignments = ", ".join(f"{name} = ?" for name in fields)
    row = (
        await deployment.env.DATABASE.prepare(
            f"UPDATE projects SET {assignments}, updated_at = ? WHERE id = ? AND user_id = ? "
            f"RETURNING {COLUMNS}"
        )
        .bind(*fields.values(), iso(deployment.now()), project.id, project.user_id)
        .first()
    )
    if row is None:  # deleted meanwhile
        raise ProjectNotFound()
    return Project.from_row(row)


async def delete(deployment: Deployment, project: Project) -> None:
    """The project's row and its chats' index rows, in one batch."""
    db = deployment.env.DATABASE
    await db.batch(
        [
            db.prepare("DELETE FROM chats WHERE project_id = ?").bind(project.id),
            db.prepare("DELETE FROM projects WHERE id = ? AND user_id = ?").bind(
                project.id, project.user_id
            ),
        ]
    )


# --- the chat index ---------------------------------------------------------------------------


async def mirror_chat(deployment: Deployment, user_id: str, version: int, chat: dict) -> None:
    """Write `chat` (a ChatInfo dict) to the index, unless a newer one is there (a higher
    version, or the same with a higher last_seq) or its project is gone."""
    await (
        deployment.env.DATABASE.prepare(
            f"INSERT INTO chats ({CHAT_COLUMNS}, user_id, version) "
            "SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? "
            "WHERE EXISTS (SELECT 1 FROM projects WHERE id = ?) "
            "ON CONFLICT (id) DO UPDATE SET topic = excluded.topic, status = excluded.status, "
            "workspace_id = excluded.workspace_id, agent_session_id = excluded.agent_session_id, "
            "run_id = excluded.run_id, message_count = excluded.message_count, "
            "last_seq = excluded.last_seq, last_activity_at = excluded.last_activity_at, "
            "version = excluded.version WHERE excluded.version > chats.version "
            "OR (excluded.version = chats.version AND excluded.last_seq > chats.last_seq)"
        )
        .bind(
            *(_column(chat, name.strip()) for name in CHAT_COLUMNS.split(",")),
            user_id,
            version,
            chat["project_id"],
        )
        .run()
    )


def _column(chat: dict, name: str) -> Any:
    # Times in D1's own format (worker/db.py `iso`), so that text order is time order.
    if name in ("created_at", "last_activity_at"):
        return iso(datetime.fromisoformat(chat[name]).timestamp())
    return chat[name]


async def forget_chat(deployment: Deployment, project_id: str, chat_id: str) -> None:
    await (
        deployment.env.DATABASE.prepare("DELETE FROM chats WHERE id = ? AND project_id = ?")
        .bind(chat_id, project_id)
        .run()
    )


async def chats_for(deployment: Deployment, user_id: str) -> list[dict]:
    """Every chat of the user's projects, newest activity first, as ChatInfo dicts."""
    result = (
        await deployment.env.DATABASE.prepare(
            f"SELECT {CHAT_COLUMNS} FROM chats WHERE user_id = ? ORDER BY last_activity_at DESC, id"
        )
        .bind(user_id)
        .all()
    )
    return [dict(row) for row in result["results"]]
