"""D1 as `workers-runtime-sdk` 1.9.x shows it to Python: each case gets an empty database."""

from typing import Any

from .checks import Runtime, Suite, raises

suite = Suite("d1")

# What every D1 answers in `meta`; production D1 adds PRODUCTION_META_KEYS, which workerd's
# local D1 (miniflare) leaves out.
META_KEYS = {
    "served_by",
    "duration",
    "changes",
    "last_row_id",
    "changed_db",
    "size_after",
    "rows_read",
    "rows_written",
}
PRODUCTION_META_KEYS = {
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
USERS = (
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, email TEXT UNIQUE);\n"
    "INSERT INTO users (name, email) VALUES ('ada', 'ada@example.com');\n"
    "INSERT INTO users (name, email) VALUES ('bob', 'bob@example.com');"
)


async def names(db: Any) -> list[str]:
    return [row[0] for row in await db.prepare("SELECT name FROM users ORDER BY id").raw()]


@suite.case()
async def first_is_none_when_no_row_matches(db: Any, rt: Runtime) -> None:
    await db.exec(USERS)
    statement = db.prepare("SELECT * FROM users WHERE name = ?").bind("nobody")
    assert await statement.first() is None
    assert await statement.first("name") is None


@suite.case()
async def first_row_reads_by_key_and_by_attribute(db: Any, rt: Runtime) -> None:
    await db.exec(USERS)
    row = await db.prepare("SELECT id, name FROM users WHERE name = ?").bind("bob").first()
    assert isinstance(row, dict)
    assert row == {"id": 2, "name": "bob"}
    assert row.name == "bob"
    assert row["id"] == 2


@suite.case()
async def first_column_and_missing_column(db: Any, rt: Runtime) -> None:
    await db.exec(USERS)
    statement = db.prepare("SELECT id, name FROM users ORDER BY id")
    assert await statement.first("name") == "ada"
    with raises(rt.error, "D1_COLUMN_NOTFOUND: Column not found (email)"):
        await statement.first("email")


@suite.case()
async def all_returns_success_results_and_meta(db: Any, rt: Runtime) -> None:
    await db.exec(USERS)
    result = await db.prepare("SELECT name FROM users ORDER BY id").all()
    assert result.success is True
    assert result.results == [{"name": "ada"}, {"name": "bob"}]
    assert all(isinstance(row, dict) for row in result.results)
    assert META_KEYS <= set(result.meta) <= PRODUCTION_META_KEYS
    assert result.meta.rows_read == 2
    assert result.meta.rows_written == 0
    assert result.meta.changes == 0
    assert result.meta.changed_db is False
    assert result.meta.duration >= 0


@suite.case(twin_only="production D1's meta fields, which workerd's local D1 leaves out")
async def meta_has_the_production_fields(db: Any, rt: Runtime) -> None:
    result = await db.prepare("SELECT 1").all()
    assert set(result.meta) == PRODUCTION_META_KEYS
    assert result.meta.timings.sql_duration_ms == result.meta.duration


@suite.case()
async def run_reports_the_write(db: Any, rt: Runtime) -> None:
    await db.exec(USERS)
    result = await db.prepare("INSERT INTO users (name) VALUES (?)").bind("cy").run()
    assert result.success is True
    assert result.results == []
    assert set(result.meta) >= META_KEYS
    assert result.meta.changes == 1
    # workerd counts index entries too (here the row and its `email` index): at least 1.
    assert result.meta.rows_written >= 1
    assert result.meta.rows_read == 0
    assert result.meta.last_row_id == 3
    assert result.meta.changed_db is True
    assert result.meta.size_after > 0

    updated = await db.prepare("UPDATE users SET email = NULL").run()
    assert updated.meta.changes == 3


@suite.case()
async def run_returns_rows_like_all(db: Any, rt: Runtime) -> None:
    await db.exec(USERS)
    result = await db.prepare("SELECT name FROM users WHERE id = ?").bind(1).run()
    assert result.results == [{"name": "ada"}]


@suite.case()
async def bind_returns_a_new_statement(db: Any, rt: Runtime) -> None:
    await db.exec(USERS)
    unbound = db.prepare("SELECT name FROM users WHERE id = ?")
    bound = unbound.bind(2)
    assert bound is not unbound
    assert await bound.first("name") == "bob"
    assert await unbound.bind(1).first("name") == "ada"
    with raises(rt.error, "D1_ERROR: Wrong number of parameter bindings for SQL query."):
        await unbound.first()


@suite.case()
async def numbered_placeholders(db: Any, rt: Runtime) -> None:
    row = await db.prepare("SELECT ?2 AS second, ?1 AS first, ?2 AS again").bind("a", "b").first()
    assert row == {"second": "b", "first": "a", "again": "b"}


@suite.case()
async def bound_values_round_trip(db: Any, rt: Runtime) -> None:
    await db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, n, b, f, s, blob, arr)")
    insert = db.prepare("INSERT INTO t (n, b, f, s, blob, arr) VALUES (?, ?, ?, ?, ?, ?)")
    await insert.bind(None, True, 1.5, "héllo", b"\x00\xffab", [1, 2, 255]).run()
    await insert.bind(None, False, -2.0, "", b"z", []).run()
    rows = (await db.prepare("SELECT n, b, f, s, blob, arr FROM t ORDER BY id").all()).results
    # D1 stores booleans as the numbers 1/0 (JS has no other) and hands BLOBs back as
    # arrays of byte values; an integral JS number reaches Python as an int.
    assert rows[0] == {"n": None, "b": 1, "f": 1.5, "s": "héllo", "blob": [0, 255, 97, 98],
                       "arr": [1, 2, 255]}  # fmt: skip
    assert rows[1] == {"n": None, "b": 0, "f": -2.0, "s": "", "blob": [122], "arr": []}
    typeof = await db.prepare("SELECT typeof(blob), typeof(b) FROM t WHERE id = 1").raw()
    assert typeof == [["blob", "real"]]


@suite.case(
    params={
        # The value as JS's String() shows it.
        "dict": (
            {"a": 1},
            "D1_TYPE_ERROR: Type 'object' not supported for value '[object Object]'",
        ),
        "list-of-str": (["x"], "D1_TYPE_ERROR: Type 'object' not supported for value 'x'"),
        "mixed-list": (
            [1, "a", None, [2, True]],
            "D1_TYPE_ERROR: Type 'object' not supported for value '1,a,,2,true'",
        ),
        "bigint": (
            2**53,
            "D1_TYPE_ERROR: Type 'bigint' not supported for value '9007199254740992'",
        ),
    }
)
async def unsupported_bind_types_are_rejected(
    db: Any, rt: Runtime, value: object, message: str
) -> None:
    with raises(rt.error, message):
        db.prepare("SELECT ?").bind(value)


@suite.case(
    params={
        "tuple": ((1, 2), "<class 'tuple'> cannot be sent over RPC."),
        "bytearray": (bytearray(b"z"), "<class 'bytearray'> cannot be sent over RPC."),
    }
)
async def values_the_sdk_cannot_send_are_refused(
    db: Any, rt: Runtime, value: object, message: str
) -> None:
    # The SDK's python_to_rpc refuses them before D1 sees them, on bind() itself.
    with raises(TypeError, message):
        db.prepare("SELECT ?").bind(value)


@suite.case()
async def largest_safe_integer_binds(db: Any, rt: Runtime) -> None:
    assert await db.prepare("SELECT ? AS n").bind(2**53 - 1).first("n") == 2**53 - 1


@suite.case()
async def numbers_cross_as_js_numbers(db: Any, rt: Runtime) -> None:
    # Every bound number is a JS number (a double), so SQLite stores it as REAL; whatever
    # comes back is a JS number too, an int in Python when it is integral and safe.
    row = await db.prepare("SELECT typeof(?) AS i, typeof(?) AS b, ? AS v").bind(5, True, 5).first()
    assert row == {"i": "real", "b": "real", "v": 5}
    assert type(row["v"]) is int
    row = await db.prepare("SELECT 2.0 AS a, 2.5 AS b, 9007199254740993 AS c").first()
    assert [type(value) for value in row.values()] == [int, float, float]
    assert row == {"a": 2, "b": 2.5, "c": 9007199254740992.0}
    assert await db.prepare("SELECT 2.0, 3").raw() == [[2, 3]]


@suite.case()
async def raw_rows_and_column_names(db: Any, rt: Runtime) -> None:
    await db.exec(USERS)
    statement = db.prepare("SELECT id, name FROM users ORDER BY id")
    assert await statement.raw() == [[1, "ada"], [2, "bob"]]
    assert await statement.raw(columnNames=True) == [["id", "name"], [1, "ada"], [2, "bob"]]
    assert await statement.raw({"columnNames": True}) == [["id", "name"], [1, "ada"], [2, "bob"]]
    empty = db.prepare("SELECT id, name FROM users WHERE id < 0")
    assert await empty.raw() == []
    assert await empty.raw(columnNames=True) == [["id", "name"]]


@suite.case()
async def batch_returns_one_result_per_statement(db: Any, rt: Runtime) -> None:
    await db.exec(USERS)
    insert = db.prepare("INSERT INTO users (name) VALUES (?)")
    results = await db.batch(
        [insert.bind("cy"), insert.bind("di"), db.prepare("SELECT count(*) AS n FROM users")]
    )
    assert [r.success for r in results] == [True, True, True]
    assert [r.meta.changes for r in results] == [1, 1, 0]
    assert results[2].results == [{"n": 4}]


@suite.case()
async def batch_rolls_back_entirely_when_one_statement_fails(db: Any, rt: Runtime) -> None:
    await db.exec(USERS)
    insert = db.prepare("INSERT INTO users (name, email) VALUES (?, ?)")
    with raises(
        rt.error,
        "D1_ERROR: UNIQUE constraint failed: users.email: SQLITE_CONSTRAINT "
        "(extended: SQLITE_CONSTRAINT_UNIQUE)",
    ):
        await db.batch(
            [
                insert.bind("cy", "cy@example.com"),
                db.prepare("UPDATE users SET name = 'changed'"),
                insert.bind("eve", "ada@example.com"),  # duplicate email
            ]
        )
    assert await names(db) == ["ada", "bob"]
    # The database is usable afterwards, outside any transaction.
    await insert.bind("cy", "cy@example.com").run()
    assert await names(db) == ["ada", "bob", "cy"]


@suite.case()
async def exec_counts_statements_one_per_line(db: Any, rt: Runtime) -> None:
    result = await db.exec(
        "CREATE TABLE t (v TEXT);\n\n"
        "INSERT INTO t VALUES ('a');\nINSERT INTO t VALUES ('b'); INSERT INTO t VALUES ('c');"
    )
    # Blank lines are skipped; a line holding two statements runs both and counts once.
    assert result.count == 3
    assert result.duration >= 0
    assert await db.prepare("SELECT v FROM t ORDER BY v").raw() == [["a"], ["b"], ["c"]]


@suite.case()
async def exec_error_names_the_first_line_and_applies_nothing(db: Any, rt: Runtime) -> None:
    await db.exec("CREATE TABLE t (v TEXT)")
    # The lines run as one batch, and a failed batch is reported against its first line.
    with raises(
        rt.error,
        "D1_EXEC_ERROR: Error in line 1: INSERT INTO t VALUES ('a');: "
        "no such table: missing: SQLITE_ERROR",
    ):
        await db.exec("INSERT INTO t VALUES ('a');\nINSERT INTO missing VALUES (1);")
    assert await db.prepare("SELECT count(*) AS n FROM t").first("n") == 0


@suite.case(
    params={
        "comment-line": (
            "CREATE TABLE t (v TEXT);\n-- a comment\nINSERT INTO t VALUES ('a');",
            "D1_EXEC_ERROR: Error in line 1: CREATE TABLE t (v TEXT);: "
            "SQL code did not contain a statement.",
        ),
        "comment-after-a-statement": (
            "CREATE TABLE t (v TEXT); -- why",
            "D1_EXEC_ERROR: Error in line 1: CREATE TABLE t (v TEXT); -- why: "
            "SQL code did not contain a statement.",
        ),
        "blank": (" \n", "D1_EXEC_ERROR: Error in line 1: : No SQL statements detected."),
    }
)
async def exec_refuses_lines_without_a_statement(
    db: Any, rt: Runtime, sql: str, message: str
) -> None:
    with raises(rt.error, message):
        await db.exec(sql)
    tables = db.prepare("SELECT count(*) AS n FROM sqlite_master WHERE name = 't'")
    assert await tables.first("n") == 0


@suite.case(
    params={
        "no-table": ("SELECT * FROM missing", "D1_ERROR: no such table: missing: SQLITE_ERROR"),
        # SQLite's error offset, where it knows one, and the extended result code.
        "syntax": ("SELEC 1", 'D1_ERROR: near "SELEC": syntax error at offset 0: SQLITE_ERROR'),
        "no-column": (
            "SELECT id, nope FROM users",
            "D1_ERROR: no such column: nope at offset 11: SQLITE_ERROR",
        ),
        "unique": (
            "INSERT INTO users (id, name) VALUES (1, 'x')",
            "D1_ERROR: UNIQUE constraint failed: users.id: SQLITE_CONSTRAINT "
            "(extended: SQLITE_CONSTRAINT_PRIMARYKEY)",
        ),
        "not-null": (
            "INSERT INTO users (name) VALUES (NULL)",
            "D1_ERROR: NOT NULL constraint failed: users.name: SQLITE_CONSTRAINT "
            "(extended: SQLITE_CONSTRAINT_NOTNULL)",
        ),
    }
)
async def sql_errors_read_like_d1(db: Any, rt: Runtime, sql: str, message: str) -> None:
    await db.exec(USERS)
    with raises(rt.error, message):
        await db.prepare(sql).run()


@suite.case()
async def foreign_keys_are_enforced(db: Any, rt: Runtime) -> None:
    await db.exec(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);\n"
        "CREATE TABLE child (parent_id INTEGER REFERENCES parent(id));"
    )
    with raises(
        rt.error,
        "D1_ERROR: FOREIGN KEY constraint failed: SQLITE_CONSTRAINT "
        "(extended: SQLITE_CONSTRAINT_FOREIGNKEY)",
    ):
        await db.prepare("INSERT INTO child VALUES (?)").bind(7).run()


@suite.case()
async def more_than_100_bound_parameters_fail(db: Any, rt: Runtime) -> None:
    ok = db.prepare(f"SELECT {', '.join('?' * 100)}").bind(*range(100))
    assert len((await ok.raw())[0]) == 100
    too_many = db.prepare(f"SELECT {', '.join('?' * 101)}").bind(*range(101))
    with raises(rt.error, "D1_ERROR: too many SQL variables at offset 307: SQLITE_ERROR"):
        await too_many.raw()
