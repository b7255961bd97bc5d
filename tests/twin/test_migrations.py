"""Migrations: wrangler's file order and `d1_migrations` bookkeeping, all-or-nothing files."""

import sqlite3
from pathlib import Path

import pytest

from twin.d1 import D1Database
from twin.errors import MigrationError
from twin.migrations import apply_migrations


@pytest.fixture
def migrations_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    write(folder, "0001_users.sql", "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);")
    # 0002 needs 0001's table; 0010 must sort after 0002 by number, not before it.
    write(folder, "0002_seed.sql", "INSERT INTO users (name) VALUES ('ada');\n-- done\n")
    write(
        folder,
        "0010_email.sql",
        "ALTER TABLE users ADD COLUMN email TEXT;\nUPDATE users SET email = name || '@x';",
    )
    write(folder, "README.md", "not a migration")
    return folder


def write(folder: Path, name: str, sql: str) -> None:
    (folder / name).write_text(sql, encoding="utf-8")


def tracked(db_path: Path) -> list[tuple[int, str, str]]:
    with sqlite3.connect(db_path) as conn:
        return conn.execute("SELECT id, name, applied_at FROM d1_migrations ORDER BY id").fetchall()


def tables(db_path: Path) -> set[str]:
    with sqlite3.connect(db_path) as conn:
        return {
            name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }


def test_applies_in_number_order_and_records_each(db_path: Path, migrations_dir: Path) -> None:
    applied = apply_migrations(db_path, migrations_dir)
    assert applied == ["0001_users.sql", "0002_seed.sql", "0010_email.sql"]
    rows = tracked(db_path)
    assert [(row[0], row[1]) for row in rows] == [
        (1, "0001_users.sql"),
        (2, "0002_seed.sql"),
        (3, "0010_email.sql"),
    ]
    assert all(row[2] for row in rows)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT name, email FROM users").fetchall() == [("ada", "ada@x")]


def test_tracking_table_is_wranglers(db_path: Path, migrations_dir: Path) -> None:
    apply_migrations(db_path, migrations_dir)
    with sqlite3.connect(db_path) as conn:
        columns = conn.execute("PRAGMA table_info(d1_migrations)").fetchall()
    # (name, declared type, not null, default, primary key)
    assert [column[1:] for column in columns] == [
        ("id", "INTEGER", 0, None, 1),
        ("name", "TEXT", 0, None, 0),
        ("applied_at", "TIMESTAMP", 1, "CURRENT_TIMESTAMP", 0),
    ]


def test_second_run_applies_nothing(db_path: Path, migrations_dir: Path) -> None:
    apply_migrations(db_path, migrations_dir)
    assert apply_migrations(db_path, migrations_dir) == []
    assert len(tracked(db_path)) == 3


def test_only_new_files_run_later(db_path: Path, migrations_dir: Path) -> None:
    apply_migrations(db_path, migrations_dir)
    write(migrations_dir, "0011_index.sql", "CREATE INDEX users_email ON users (email);")
    assert apply_migrations(db_path, migrations_dir) == ["0011_index.sql"]
    assert [row[1] for row in tracked(db_path)][-1] == "0011_index.sql"


def test_broken_migration_applies_nothing_of_itself(db_path: Path, migrations_dir: Path) -> None:
    write(
        migrations_dir,
        "0003_broken.sql",
        "CREATE TABLE audit (id INTEGER);\nINSERT INTO users (name) VALUES ('bob');\n"
        "INSERT INTO nowhere VALUES (1);",
    )
    with pytest.raises(MigrationError) as caught:
        apply_migrations(db_path, migrations_dir)
    assert caught.value.file_name == "0003_broken.sql"
    assert caught.value.sqlite_message == "no such table: nowhere: SQLITE_ERROR"
    assert "0003_broken.sql" in str(caught.value)
    assert isinstance(caught.value.__cause__, sqlite3.Error)

    # Earlier files stay applied; the broken file and everything after it did not run.
    assert [row[1] for row in tracked(db_path)] == ["0001_users.sql", "0002_seed.sql"]
    assert "audit" not in tables(db_path)
    with sqlite3.connect(db_path) as conn:
        assert conn.execute("SELECT name FROM users").fetchall() == [("ada",)]
        email_column = [c for c in conn.execute("PRAGMA table_info(users)") if c[1] == "email"]
    assert email_column == []

    write(migrations_dir, "0003_broken.sql", "CREATE TABLE audit (id INTEGER);")
    assert apply_migrations(db_path, migrations_dir) == ["0003_broken.sql", "0010_email.sql"]


async def test_d1_sees_the_migrated_schema(db_path: Path, migrations_dir: Path) -> None:
    apply_migrations(db_path, migrations_dir)
    db = D1Database(db_path)
    try:
        assert await db.prepare("SELECT email FROM users").first("email") == "ada@x"
    finally:
        db.close()


def test_missing_folder_means_no_migrations(db_path: Path, tmp_path: Path) -> None:
    assert apply_migrations(db_path, tmp_path / "absent") == []
    assert tracked(db_path) == []
