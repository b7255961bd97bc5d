"""ProjectData's own tables, and the ordered steps that build them.

`STEPS[n]` takes storage from version n to n + 1; `schema_version` holds how many have run.
The constructor runs the missing ones in one transaction, so an object whose storage an
older deployment made is brought up to date the first time the new code wakes it, and a
step never runs twice. Add a step at the end; never edit one that has shipped.
"""

from collections.abc import Sequence
from typing import Any

STEPS: tuple[str, ...] = (
    # 1: chats, their messages (one sequence for the whole project) and activity events.
    """
    CREATE TABLE project (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        project_id TEXT NOT NULL,
        last_seq INTEGER NOT NULL DEFAULT 0
    );
    CREATE TABLE chats (
        id TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        topic TEXT NOT NULL,
        status TEXT NOT NULL,
        workspace_id TEXT,
        agent_session_id TEXT,
        run_id TEXT,
        message_count INTEGER NOT NULL DEFAULT 0,
        last_seq INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        last_activity_at REAL NOT NULL,
        version INTEGER NOT NULL DEFAULT 1,
        indexed_version INTEGER NOT NULL DEFAULT 0,
        indexed_count INTEGER NOT NULL DEFAULT 0,
        indexed_at REAL NOT NULL DEFAULT 0
    );
    CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,
        id TEXT NOT NULL UNIQUE,
        chat_id TEXT NOT NULL,
        role TEXT NOT NULL,
        frame TEXT NOT NULL,
        truncated INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL
    );
    CREATE INDEX messages_by_chat ON messages (chat_id, seq);
    CREATE TABLE activity (
        id INTEGER PRIMARY KEY,
        chat_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE INDEX activity_by_chat ON activity (chat_id, id);
    """,
)

_VERSION_TABLE = """
CREATE TABLE IF NOT EXISTS schema_version (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL
)
"""


def migrate(storage: Any, steps: Sequence[str] = STEPS) -> int:
    """Run the steps `storage` has not had yet, atomically; return its version after."""
    sql = storage.sql

    def run() -> int:
        sql.exec(_VERSION_TABLE)
        rows = list(sql.exec("SELECT version FROM schema_version").raw())
        version = int(rows[0][0]) if rows else 0
        assert version <= len(steps), f"storage is at schema {version}, newer than this code"
        for step in steps[version:]:
            sql.exec(step)
        sql.exec(
            "INSERT INTO schema_version (id, version) VALUES (1, ?) "
            "ON CONFLICT (id) DO UPDATE SET version = excluded.version",
            len(steps),
        )
        return len(steps)

    box: list[int] = []
    storage.transactionSync(lambda: box.append(run()))
    return box[0]
