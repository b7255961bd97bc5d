"""D1 conformance: what D1 documents, and what `workers-runtime-sdk` shows to Python."""

import sqlite3
from pathlib import Path

import pytest

from twin.d1 import D1Database
from twin.errors import D1Error
from twin.records import Record

META_KEYS = {
    "served_by",
    "served_by_region",
    "served_by_primary",
    "timings",
    "duration",
    "changes",
    "last_row_id",
    "changed_db",
    "size_after",
    "rows_read",
    "rows_written",
    "total_attempts",
}


@pytest.fixture
async def users(db: D1Database) -> D1Database:
    await db.exec(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE);\n"
        "INSERT INTO users (name, email) VALUES ('ada', 'ada@example.com');\n"
        "INSERT INTO users (name, email) VALUES ('bob', 'bob@example.com');"
    )
    return db


async def names(db: D1Database) -> list[str]:
    return [row[0] for row in await db.prepare("SELECT name FROM users ORDER BY id").raw()]


async def test_first_is_none_when_no_row_matches(users: D1Database) -> None:
    statement = users.prepare("SELECT * FROM users WHERE name = ?").bind("nobody")
    assert await statement.first() is None
    assert await statement.first("name") is None


async def test_first_row_reads_by_key_and_by_attribute(users: D1Database) -> None:
    row = await users.prepare("SELECT id, name FROM users WHERE name = ?").bind("bob").first()
    assert isinstance(row, dict)
    assert row == {"id": 2, "name": "bob"}
    assert row.name == "bob"
    assert row["id"] == 2


async def test_first_column_and_missing_column(users: D1Database) -> None:
    statement = users.prepare("SELECT id, name FROM users ORDER BY id")
    assert await statement.first("name") == "ada"
    with pytest.raises(D1Error, match=r"^D1_COLUMN_NOTFOUND: Column not found \(email\)$"):
        await statement.first("email")


async def test_all_returns_success_results_and_meta(users: D1Database) -> None:
    result = await users.prepare("SELECT name FROM users ORDER BY id").all()
    assert result.success is True
    assert result.results == [{"name": "ada"}, {"name": "bob"}]
    assert all(isinstance(row, Record) for row in result.results)
    assert set(result.meta) == META_KEYS
    assert result.meta.rows_read == 2
    assert result.meta.changes == 0
    assert result.meta.changed_db is False
    assert result.meta.duration >= 0
    assert result.meta.timings.sql_duration_ms == result.meta.duration


async def test_run_reports_the_write(users: D1Database) -> None:
    result = await users.prepare("INSERT INTO users (name) VALUES (?)").bind("cy").run()
    assert result.success is True
    assert result.results == []
    assert set(result.meta) == META_KEYS
    assert result.meta.changes == 1
    assert result.meta.rows_written == 1
    assert result.meta.last_row_id == 3
    assert result.meta.changed_db is True
    assert result.meta.size_after > 0

    updated = await users.prepare("UPDATE users SET email = NULL").run()
    assert updated.meta.changes == 3


async def test_run_returns_rows_like_all(users: D1Database) -> None:
    result = await users.prepare("SELECT name FROM users WHERE id = ?").bind(1).run()
    assert result.results == [{"name": "ada"}]


async def test_bind_returns_a_new_statement(users: D1Database) -> None:
    unbound = users.prepare("SELECT name FROM users WHERE id = ?")
    bound = unbound.bind(2)
    assert bound is not unbound
    assert unbound.params == ()
    assert await bound.first("name") == "bob"
    assert await unbound.bind(1).first("name") == "ada"
    with pytest.raises(
        D1Error, match=r"^D1_ERROR: Wrong number of parameter bindings for SQL query\.$"
    ):
        await unbound.first()


async def test_numbered_placeholders(db: D1Database) -> None:
    row = await db.prepare("SELECT ?2 AS second, ?1 AS first, ?2 AS again").bind("a", "b").first()
    assert row == {"second": "b", "first": "a", "again": "b"}


async def test_bound_values_round_trip(db: D1Database) -> None:
    await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n, b, f, s, blob, arr)")
    insert = db.prepare("INSERT INTO t (n, b, f, s, blob, arr) VALUES (?, ?, ?, ?, ?, ?)")
    await insert.bind(None, True, 1.5, "héllo", b"\x00\xffab", [1, 2, 255]).run()
    await insert.bind(None, False, -2.0, "", bytearray(b"z"), []).run()
    rows = (await db.prepare("SELECT n, b, f, s, blob, arr FROM t ORDER BY id").all()).results
    # D1 stores booleans as 1/0 and hands BLOBs back as arrays of byte values.
    assert rows[0] == {"n": None, "b": 1, "f": 1.5, "s": "héllo", "blob": [0, 255, 97, 98],
                       "arr": [1, 2, 255]}  # fmt: skip
    assert rows[1] == {"n": None, "b": 0, "f": -2.0, "s": "", "blob": [122], "arr": []}
    typeof = await db.prepare("SELECT typeof(blob), typeof(b) FROM t WHERE id = 1").raw()
    assert typeof == [["blob", "integer"]]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ({"a": 1}, "D1_TYPE_ERROR: Type 'object' not supported for value '{'a': 1}'"),
        ((1, 2), "D1_TYPE_ERROR: Type 'object' not supported for value '(1, 2)'"),
        (["x"], "D1_TYPE_ERROR: Type 'object' not supported for value '['x']'"),
        (2**53, "D1_TYPE_ERROR: Type 'bigint' not supported for value '9007199254740992'"),
    ],
)
def test_unsupported_bind_types_are_rejected(db: D1Database, value: object, message: str) -> None:
    with pytest.raises(D1Error) as caught:
        db.prepare("SELECT ?").bind(value)
    assert str(caught.value) == message


async def test_largest_safe_integer_binds(db: D1Database) -> None:
    assert await db.prepare("SELECT ? AS n").bind(2**53 - 1).first("n") == 2**53 - 1


async def test_raw_rows_and_column_names(users: D1Database) -> None:
    statement = users.prepare("SELECT id, name FROM users ORDER BY id")
    assert await statement.raw() == [[1, "ada"], [2, "bob"]]
    assert await statement.raw(columnNames=True) == [["id", "name"], [1, "ada"], [2, "bob"]]
    assert await statement.raw({"columnNames": True}) == [["id", "name"], [1, "ada"], [2, "bob"]]
    empty = users.prepare("SELECT id, name FROM users WHERE id < 0")
    assert await empty.raw() == []
    assert await empty.raw(columnNames=True) == [["id", "name"]]


async def test_batch_returns_one_result_per_statement(users: D1Database) -> None:
    insert = users.prepare("INSERT INTO users (name) VALUES (?)")
    results = await users.batch(
        [insert.bind("cy"), insert.bind("di"), users.prepare("SELECT count(*) AS n FROM users")]
    )
    assert [r.success for r in results] == [True, True, True]
    assert [r.meta.changes for r in results] == [1, 1, 0]
    assert results[2].results == [{"n": 4}]


async def test_batch_rolls_back_entirely_when_one_statement_fails(users: D1Database) -> None:
    insert = users.prepare("INSERT INTO users (name, email) VALUES (?, ?)")
    with pytest.raises(D1Error) as caught:
        await users.batch(
            [
                insert.bind("cy", "cy@example.com"),
                users.prepare("UPDATE users SET name = 'changed'"),
                insert.bind("eve", "ada@example.com"),  # duplicate email
            ]
        )
    assert str(caught.value) == (
        "D1_ERROR: UNIQUE constraint failed: users.email: SQLITE_CONSTRAINT"
    )
    assert await names(users) == ["ada", "bob"]
    # The connection is usable afterwards, outside any transaction.
    await insert.bind("cy", "cy@example.com").run()
    assert await names(users) == ["ada", "bob", "cy"]


async def test_exec_counts_statements_one_per_line(db: D1Database) -> None:
    result = await db.exec(
        "CREATE TABLE t (v TEXT);\n\n-- a comment\nINSERT INTO t VALUES ('a');\n"
        "INSERT INTO t VALUES ('b');"
    )
    assert result.count == 3
    assert result.duration >= 0
    assert await db.prepare("SELECT v FROM t ORDER BY v").raw() == [["a"], ["b"]]


async def test_exec_error_names_the_line_and_applies_nothing(db: D1Database) -> None:
    await db.exec("CREATE TABLE t (v TEXT)")
    with pytest.raises(D1Error) as caught:
        await db.exec("INSERT INTO t VALUES ('a');\nINSERT INTO missing VALUES (1);")
    assert str(caught.value) == (
        "D1_EXEC_ERROR: Error in line 2: INSERT INTO missing VALUES (1);: "
        "no such table: missing: SQLITE_ERROR"
    )
    assert await db.prepare("SELECT count(*) AS n FROM t").first("n") == 0


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT * FROM missing", "D1_ERROR: no such table: missing: SQLITE_ERROR"),
        ("SELEC 1", 'D1_ERROR: near "SELEC": syntax error: SQLITE_ERROR'),
        ("SELECT nope FROM users", "D1_ERROR: no such column: nope: SQLITE_ERROR"),
        (
            "INSERT INTO users (id, name) VALUES (1, 'x')",
            "D1_ERROR: UNIQUE constraint failed: users.id: SQLITE_CONSTRAINT",
        ),
        (
            "INSERT INTO users (name) VALUES (NULL)",
            "D1_ERROR: NOT NULL constraint failed: users.name: SQLITE_CONSTRAINT",
        ),
    ],
)
async def test_sql_errors_read_like_d1(users: D1Database, sql: str, message: str) -> None:
    with pytest.raises(D1Error) as caught:
        await users.prepare(sql).run()
    assert str(caught.value) == message
    assert isinstance(caught.value.__cause__, sqlite3.Error)


async def test_foreign_keys_are_enforced(db: D1Database) -> None:
    await db.exec(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n"
        "CREATE TABLE child (parent_id INTEGER REFERENCES parent(id));"
    )
    with pytest.raises(D1Error, match="FOREIGN KEY constraint failed: SQLITE_CONSTRAINT"):
        await db.prepare("INSERT INTO child VALUES (?)").bind(7).run()


async def test_more_than_100_bound_parameters_fail(db: D1Database) -> None:
    ok = db.prepare(f"SELECT {', '.join('?' * 100)}").bind(*range(100))
    assert len((await ok.raw())[0]) == 100
    too_many = db.prepare(f"SELECT {', '.join('?' * 101)}").bind(*range(101))
    with pytest.raises(D1Error, match=r"^D1_ERROR: too many SQL variables"):
        await too_many.raw()


async def test_data_survives_reopening_the_file(users: D1Database, db_path: Path) -> None:
    await users.prepare("INSERT INTO users (name) VALUES (?)").bind("cy").run()
    users.close()
    reopened = D1Database(db_path)
    try:
        assert await names(reopened) == ["ada", "bob", "cy"]
    finally:
        reopened.close()
