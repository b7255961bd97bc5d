"""What only the D1 twin has: its Python types, its error chain and its file. What D1 itself
does is asserted by the conformance suite (tests/twin/conformance/d1.py), on both runtimes."""

import sqlite3
from pathlib import Path

import pytest

from twin.d1 import D1Database
from twin.errors import D1Error
from twin.records import Record


@pytest.fixture
async def users(db: D1Database) -> D1Database:
    await db.exec(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL);\n"
        "INSERT INTO users (name) VALUES ('ada');\n"
        "INSERT INTO users (name) VALUES ('bob');"
    )
    return db


async def test_rows_are_records(users: D1Database) -> None:
    result = await users.prepare("SELECT name FROM users ORDER BY id").all()
    assert all(isinstance(row, Record) for row in result.results)
    assert isinstance(await users.prepare("SELECT name FROM users").first(), Record)


async def test_bind_leaves_the_statement_unbound(users: D1Database) -> None:
    unbound = users.prepare("SELECT name FROM users WHERE id = ?")
    unbound.bind(2)
    assert unbound.params == ()


async def test_sql_errors_chain_the_sqlite_error(users: D1Database) -> None:
    with pytest.raises(D1Error) as caught:
        await users.prepare("SELECT * FROM missing").run()
    assert isinstance(caught.value.__cause__, sqlite3.Error)
    with pytest.raises(D1Error) as caught:
        await users.exec("INSERT INTO missing VALUES (1);")
    assert isinstance(caught.value.__cause__, sqlite3.Error)


async def test_data_survives_reopening_the_file(users: D1Database, db_path: Path) -> None:
    await users.prepare("INSERT INTO users (name) VALUES (?)").bind("cy").run()
    users.close()
    reopened = D1Database(db_path)
    try:
        names = await reopened.prepare("SELECT name FROM users ORDER BY id").raw()
        assert names == [["ada"], ["bob"], ["cy"]]
    finally:
        reopened.close()
