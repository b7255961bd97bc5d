"""`ctx.storage.sql`: synchronous SQL on a Durable Object's own SQLite database.

As on Cloudflare, a query may hold several statements (bindings go to the last), may not
touch the hidden `_cf_` tables, and may not open transactions of its own: those go through
`storage.transaction()` / `transactionSync()`.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from typing import Any

from twin.errors import DurableObjectError
from twin.records import Record

MAX_SQL_BINDINGS = 100
MAX_SAFE_INTEGER = 2**53 - 1  # bindings travel as JS numbers


class SqlStorage:
    """`ctx.storage.sql`: synchronous SQL on the object's own database.

    `connection()` gives the object's database, which its storage opens on first use and
    on which it installs `authorize` for every statement it does not run itself.
    """

    def __init__(self, connection: Callable[[], sqlite3.Connection]) -> None:
        self._connection = connection
        self._refusal: str | None = None

    def exec(self, query: str, *bindings: Any) -> SqlStorageCursor:
        if len(bindings) > MAX_SQL_BINDINGS:
            raise DurableObjectError(f"Too many SQL bindings: at most {MAX_SQL_BINDINGS}.")
        args = [_binding(value) for value in bindings]
        statements = _statements(query)
        if not statements:
            raise DurableObjectError("SQL query did not contain a statement.")
        conn = self._connection()
        before = conn.total_changes
        self._refusal = None
        try:
            # Bindings belong to the last statement, as in workerd.
            for statement in statements[:-1]:
                conn.execute(statement)
            cursor = conn.execute(statements[-1], args)
            rows = cursor.fetchall()
        except sqlite3.Error as exc:
            raise DurableObjectError(self._refusal or _sqlite_message(exc)) from exc
        names = [column[0] for column in cursor.description or ()]
        return SqlStorageCursor(names, rows, conn.total_changes - before)

    @property
    def databaseSize(self) -> int:
        conn = self._connection()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        size = conn.execute("PRAGMA page_size").fetchone()[0]
        return int(pages * size)

    def authorize(self, action: int, arg1: str | None, arg2: str | None) -> int:
        if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
            self._refusal = _TRANSACTION_REFUSAL
            return sqlite3.SQLITE_DENY
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            return sqlite3.SQLITE_DENY
        if any(name and name.lower().startswith("_cf_") for name in (arg1, arg2)):
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


class SqlStorageCursor:
    """The rows of one `sql.exec`, consumed as they are read (rows are `Record`s)."""

    def __init__(self, names: list[str], rows: list[tuple[Any, ...]], written: int) -> None:
        self.columnNames = names
        # SQLite does not report rows scanned, so rows returned stand in for them.
        self.rowsRead = len(rows)
        self.rowsWritten = written
        self._rows = iter(rows)

    def __iter__(self) -> SqlStorageCursor:
        return self

    def __next__(self) -> Record:
        return Record(zip(self.columnNames, next(self._rows), strict=True))

    def next(self) -> Record:
        """The JS iterator protocol: `{done, value}`."""
        row = next(self, None)
        return Record(done=row is None, value=row)

    def toArray(self) -> list[Record]:
        return list(self)

    def one(self) -> Record:
        rows = self.toArray()
        if len(rows) != 1:
            got = "no results" if not rows else "multiple results"
            raise DurableObjectError(f"Expected exactly one result from SQL query, but got {got}.")
        return rows[0]

    def raw(self) -> Iterator[list[Any]]:
        return (list(row) for row in self._rows)


_TRANSACTION_REFUSAL = (
    "To execute a transaction, please use the state.storage.transaction() or "
    "state.storage.transactionSync() APIs instead of the SQL BEGIN TRANSACTION or SAVEPOINT "
    "statements. The JavaScript API is safer because it will automatically roll back on "
    "exceptions, and because it interacts correctly with Durable Objects' automatic atomic "
    "write coalescing."
)


def _statements(query: str) -> list[str]:
    """`query` split into statements (sqlite3 runs one at a time; workerd runs them all)."""
    statements, pending = [], ""
    for piece in query.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            statements.append(pending)
            pending = ""
    if pending.strip(" \t\r\n;"):
        statements.append(pending)
    return [s for s in statements if s.strip(" \t\r\n;")]


def _binding(value: Any) -> Any:
    kind = type(value)
    if value is None or kind in (str, bytes, float):
        return value
    if kind is int and abs(value) <= MAX_SAFE_INTEGER:
        return value
    raise TypeError(f"SQL bindings must be str, int, float, bytes or None, not {value!r}")


def _sqlite_message(exc: sqlite3.Error) -> str:
    name = getattr(exc, "sqlite_errorname", None)
    return f"{exc}: {name}" if name else str(exc)
