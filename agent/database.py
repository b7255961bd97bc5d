"""The agent's one SQLite file (WAL): its connection, its lock and its transactions.

Calls are short synchronous statements, safe from any thread (one lock, one connection);
the agent calls them from its event loop. Every write is one committed transaction, so a
crash never leaves half a record.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BUSY_TIMEOUT_SECONDS = 5.0
# The agent's state (its database, its tokens) is readable by the agent's user only.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def utc_now() -> str:
    """The current time as ISO-8601 UTC with a trailing Z."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Database:
    """The file at `path` with `schema` applied, and the columns of `added_columns`
    (table -> column -> type) added to tables an older agent made without them."""

    def __init__(
        self, path: str | Path, schema: str, added_columns: Mapping[str, Mapping[str, str]]
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        # Owner only, before sqlite3 makes it 0644; its -wal and -shm files take this mode.
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, PRIVATE_FILE_MODE))
        self.path.chmod(PRIVATE_FILE_MODE)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path,
            timeout=BUSY_TIMEOUT_SECONDS,
            isolation_level=None,  # autocommit; transactions are explicit below
            check_same_thread=False,
        )
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(schema)
            for table, columns in added_columns.items():
                info = self._db.execute(f"PRAGMA table_info({table})")
                present = {row["name"] for row in info}
                for column, kind in columns.items():
                    if column not in present:
                        self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """The lock and one write transaction: committed, or rolled back on any exception."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _row(self, sql: str, params: tuple[Any, ...]) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self._db.execute(sql, params).fetchone()
        return row
