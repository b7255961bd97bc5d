"""`ctx.storage` of a SQLite-backed Durable Object: KV API, SQL API, transactions."""

import datetime
from collections.abc import Iterator
from pathlib import Path

import pytest

from twin.errors import DurableObjectError
from twin.records import Record
from twin.storage import (
    MAX_KEY_BYTES,
    MAX_KEYS_PER_CALL,
    DurableObjectStorage,
    DurableObjectTransaction,
)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[DurableObjectStorage]:
    store = DurableObjectStorage(tmp_path / "do" / "Thing" / "object.sqlite")
    yield store
    store.close()


VALUES = [
    None,
    True,
    42,
    -(2**60),
    3.25,
    "text ✓",
    b"\x00\x01",
    datetime.datetime(2024, 1, 2, 3, 4, 5, 6000),
    [1, "two", [3.0]],
    {"nested": {"list": [b"x", None]}},
]


@pytest.mark.parametrize("value", VALUES, ids=repr)
async def test_every_allowed_value_round_trips_with_its_type(
    storage: DurableObjectStorage, value: object
) -> None:
    await storage.put("key", value)
    stored = await storage.get("key")
    assert stored == value
    assert type(stored) is (Record if isinstance(value, dict) else type(value))


async def test_stored_values_are_copies(storage: DurableObjectStorage) -> None:
    value = {"items": [1]}
    await storage.put("k", value)
    value["items"].append(2)
    first = await storage.get("k")
    first["items"].append(3)
    assert await storage.get("k") == {"items": [1]}


async def test_get_of_missing_key_is_none_and_of_many_keys_is_a_dict_of_found_keys(
    storage: DurableObjectStorage,
) -> None:
    assert await storage.get("absent") is None
    await storage.put({"b": 2, "a": 1})
    assert await storage.get(["b", "zzz", "a"]) == {"a": 1, "b": 2}


async def test_delete_answers_whether_and_how_many(storage: DurableObjectStorage) -> None:
    await storage.put({"a": 1, "b": 2, "c": 3})
    assert await storage.delete("a") is True
    assert await storage.delete("a") is False
    assert await storage.delete(["b", "c", "nope"]) == 2
    assert await storage.list() == {}


async def test_list_is_in_key_order_with_prefix_range_limit_and_reverse(
    storage: DurableObjectStorage,
) -> None:
    await storage.put({"user:3": 3, "user:1": 1, "user:2": 2, "team:1": "t", "userz": 0})
    assert list(await storage.list()) == ["team:1", "user:1", "user:2", "user:3", "userz"]
    assert list(await storage.list(prefix="user:")) == ["user:1", "user:2", "user:3"]
    assert list(await storage.list(start="user:2", end="userz")) == ["user:2", "user:3"]
    assert list(await storage.list(startAfter="user:2")) == ["user:3", "userz"]
    assert list(await storage.list(prefix="user:", reverse=True, limit=2)) == ["user:3", "user:2"]
    with pytest.raises(TypeError):
        await storage.list(start="a", startAfter="b")


async def test_keys_are_limited_in_size_and_number(storage: DurableObjectStorage) -> None:
    with pytest.raises(ValueError, match="Keys cannot be larger"):
        await storage.put("k" * (MAX_KEY_BYTES + 1), 1)
    with pytest.raises(ValueError):
        await storage.get([f"k{i}" for i in range(MAX_KEYS_PER_CALL + 1)])
    with pytest.raises(TypeError):
        await storage.put("k", (1, 2))


async def test_data_survives_closing_the_file(tmp_path: Path) -> None:
    path = tmp_path / "object.sqlite"
    first = DurableObjectStorage(path)
    await first.put("k", [1])
    first.sql.exec("CREATE TABLE t (v)")
    first.close()
    second = DurableObjectStorage(path)
    assert await second.get("k") == [1]
    assert second.sql.exec("SELECT count(*) AS n FROM t").one().n == 0
    second.close()


async def test_delete_all_removes_keys_and_tables_but_not_the_alarm(
    storage: DurableObjectStorage,
) -> None:
    await storage.put("k", 1)
    storage.sql.exec(
        "CREATE TABLE parent (id INTEGER PRIMARY KEY);"
        "CREATE TABLE child (parent INTEGER REFERENCES parent (id));"
        "CREATE INDEX child_parent ON child (parent);"
        "INSERT INTO parent VALUES (1); INSERT INTO child VALUES (1);"
    )
    await storage.setAlarm(5_000)
    await storage.deleteAll()
    assert await storage.list() == {}
    tables = storage.sql.exec("SELECT name FROM sqlite_master WHERE name NOT LIKE '_cf_%'")
    assert tables.toArray() == []
    assert await storage.getAlarm() == 5_000


# ---- SQL --------------------------------------------------------------------------------


@pytest.fixture
def people(storage: DurableObjectStorage) -> DurableObjectStorage:
    storage.sql.exec("CREATE TABLE people (id INTEGER PRIMARY KEY, name TEXT, photo BLOB)")
    return storage


def test_exec_reports_rows_written_and_returns_rows_as_records(
    people: DurableObjectStorage,
) -> None:
    cursor = people.sql.exec(
        "INSERT INTO people (name, photo) VALUES (?, ?), (?, ?)", "ada", b"\x01", "bob", None
    )
    assert cursor.rowsWritten == 2
    rows = people.sql.exec("SELECT id, name, photo FROM people ORDER BY id").toArray()
    assert rows == [
        {"id": 1, "name": "ada", "photo": b"\x01"},
        {"id": 2, "name": "bob", "photo": None},
    ]
    assert rows[0].name == "ada"


def test_cursor_column_names_raw_and_iteration(people: DurableObjectStorage) -> None:
    people.sql.exec("INSERT INTO people (name) VALUES ('ada'), ('bob')")
    cursor = people.sql.exec("SELECT name, id AS ident FROM people ORDER BY id")
    assert cursor.columnNames == ["name", "ident"]
    assert list(cursor.raw()) == [["ada", 1], ["bob", 2]]
    assert cursor.toArray() == []  # a cursor is consumed as it is read
    assert [row["name"] for row in people.sql.exec("SELECT name FROM people")] == ["ada", "bob"]
    assert people.sql.exec("SELECT name FROM people").rowsRead == 2


def test_one_wants_exactly_one_row(people: DurableObjectStorage) -> None:
    with pytest.raises(DurableObjectError) as none:
        people.sql.exec("SELECT * FROM people").one()
    assert str(none.value) == "Expected exactly one result from SQL query, but got no results."
    people.sql.exec("INSERT INTO people (name) VALUES ('ada'), ('bob')")
    with pytest.raises(DurableObjectError) as many:
        people.sql.exec("SELECT * FROM people").one()
    assert str(many.value) == (
        "Expected exactly one result from SQL query, but got multiple results."
    )
    assert people.sql.exec("SELECT name FROM people WHERE id = ?", 2).one() == {"name": "bob"}


def test_several_statements_run_in_one_exec(storage: DurableObjectStorage) -> None:
    cursor = storage.sql.exec(
        "CREATE TABLE t (v TEXT); INSERT INTO t VALUES ('a;b'); SELECT v FROM t WHERE v = ?;",
        "a;b",
    )
    assert cursor.toArray() == [{"v": "a;b"}]


def test_sql_errors_carry_sqlite_codes_and_bindings_are_checked(
    storage: DurableObjectStorage,
) -> None:
    with pytest.raises(DurableObjectError, match=r"no such table: missing: SQLITE_ERROR$"):
        storage.sql.exec("SELECT * FROM missing")
    with pytest.raises(TypeError):
        storage.sql.exec("SELECT ?", True)
    with pytest.raises(TypeError):
        storage.sql.exec("SELECT ?", 2**53)


def test_sql_cannot_reach_hidden_tables_or_open_transactions(
    storage: DurableObjectStorage,
) -> None:
    with pytest.raises(DurableObjectError, match="SQLITE_AUTH"):
        storage.sql.exec("SELECT * FROM _cf_KV")
    with pytest.raises(DurableObjectError, match=r"^To execute a transaction, please use"):
        storage.sql.exec("BEGIN TRANSACTION")


def test_database_size_grows_with_data(storage: DurableObjectStorage) -> None:
    storage.sql.exec("CREATE TABLE t (v BLOB)")
    before = storage.sql.databaseSize
    storage.sql.exec("INSERT INTO t VALUES (zeroblob(100000))")
    assert storage.sql.databaseSize > before > 0


# ---- transactions -----------------------------------------------------------------------


async def test_a_failing_transaction_rolls_back_kv_and_sql(people: DurableObjectStorage) -> None:
    async def closure(txn: DurableObjectTransaction) -> None:
        await txn.put("k", "written")
        people.sql.exec("INSERT INTO people (name) VALUES ('ghost')")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await people.transaction(closure)
    assert await people.get("k") is None
    assert people.sql.exec("SELECT count(*) AS n FROM people").one().n == 0


async def test_transaction_commits_and_returns_and_explicit_rollback_undoes(
    storage: DurableObjectStorage,
) -> None:
    async def keep(txn: DurableObjectTransaction) -> str:
        await txn.put("kept", 1)
        return "done"

    async def undo(txn: DurableObjectTransaction) -> str:
        await txn.put("undone", 1)
        txn.rollback()
        return "rolled back"

    assert await storage.transaction(keep) == "done"
    assert await storage.transaction(undo) == "rolled back"
    assert await storage.list() == {"kept": 1}


def test_transaction_sync_rolls_back_on_exception_and_nests(
    people: DurableObjectStorage,
) -> None:
    def insert_then_fail(name: str) -> None:
        people.sql.exec("INSERT INTO people (name) VALUES (?)", name)
        raise ValueError(name)

    def outer() -> int:
        people.sql.exec("INSERT INTO people (name) VALUES ('ada')")
        with pytest.raises(ValueError):
            people.transactionSync(lambda: insert_then_fail("inner"))
        return 7

    assert people.transactionSync(outer) == 7
    with pytest.raises(ValueError):
        people.transactionSync(lambda: insert_then_fail("bob"))
    assert list(people.sql.exec("SELECT name FROM people").raw()) == [["ada"]]
