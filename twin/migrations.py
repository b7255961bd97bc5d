"""Applies wrangler-format D1 migrations (`NNNN_name.sql`) to a local D1 file.

Bookkeeping matches `wrangler d1 migrations apply`: the same `d1_migrations` table, one
row per applied file (named with its `.sql`), files in the order of their number, so a
database migrated here and one migrated by wrangler agree on what has run.
"""

import sqlite3
from pathlib import Path

from twin.d1 import connect, sqlite_error_text
from twin.errors import MigrationError

MIGRATIONS_TABLE = "d1_migrations"

_CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE}(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT UNIQUE,
    applied_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP NOT NULL
)
"""


def apply_migrations(db_path: Path, migrations_dir: Path) -> list[str]:
    """Apply the migrations not yet recorded in `db_path`; return their file names.

    Each file and its `d1_migrations` row commit together. The first failing file raises
    `MigrationError`; it and every later file stay unapplied.
    """
    conn = connect(db_path)
    try:
        conn.execute(_CREATE_TABLE)
        applied = {name for (name,) in conn.execute(f"SELECT name FROM {MIGRATIONS_TABLE}")}
        pending = [path for path in migration_files(migrations_dir) if path.name not in applied]
        for path in pending:
            _apply(conn, path)
        return [path.name for path in pending]
    finally:
        conn.close()


def migration_files(migrations_dir: Path) -> list[Path]:
    """The `.sql` files of `migrations_dir` in the order wrangler applies them."""
    return sorted(migrations_dir.glob("*.sql"), key=lambda path: (_number(path), path.name))


def _number(path: Path) -> int:
    prefix = path.name.split("_", 1)[0]
    return int(prefix) if prefix.isdigit() else 0


def _apply(conn: sqlite3.Connection, path: Path) -> None:
    try:
        # executescript runs the whole file inside the transaction BEGIN opens; the
        # tracking row joins it, so the file applies completely or not at all.
        conn.executescript(f"BEGIN IMMEDIATE;\n{path.read_text(encoding='utf-8')}\n")
        conn.execute(f"INSERT INTO {MIGRATIONS_TABLE} (name) VALUES (?)", (path.name,))
        conn.execute("COMMIT")
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise MigrationError(path.name, sqlite_error_text(exc)) from exc
