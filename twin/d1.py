"""The D1 twin: one SQLite file per database, as `workers-runtime-sdk` 1.9.x shows D1.

Rows, results and `meta` are `Record`s. BLOBs come back as `list[int]`: D1 sends them as
JSON arrays of byte values and Pyodide turns those into Python lists. Numbers cross as JS
numbers both ways: every bound number is stored as REAL, and an integral result is an int
(`twin.js`). Error texts are workerd's, with SQLite's error offset and extended result
code where it gives them. Statements run
inline on the caller's thread: SQLite answers in microseconds, a thread hop would cost
more than the query.
"""

import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twin.errors import D1Error
from twin.js import MAX_SAFE_INTEGER, js_number, js_string
from twin.private_files import connect_private
from twin.records import Record

# D1's documented limits (developers.cloudflare.com/d1/platform/limits). SQLite enforces
# them itself, so the errors read exactly as D1's do ("too many SQL variables", ...).
MAX_BOUND_PARAMETERS = 100
MAX_SQL_STATEMENT_BYTES = 100_000
MAX_VALUE_BYTES = 2_000_000  # a string, BLOB or whole row
MAX_COLUMNS = 100
MAX_FUNCTION_ARGUMENTS = 32
MAX_LIKE_PATTERN_BYTES = 50

SERVED_BY = "sam-local-d1"
SERVED_BY_REGION = "LOCAL"

# columns, rows, meta
_Outcome = tuple[list[str], list[Sequence[Any]], Record]

_LIMITS = {
    sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER: MAX_BOUND_PARAMETERS,
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: MAX_SQL_STATEMENT_BYTES,
    sqlite3.SQLITE_LIMIT_LENGTH: MAX_VALUE_BYTES,
    sqlite3.SQLITE_LIMIT_COLUMN: MAX_COLUMNS,
    sqlite3.SQLITE_LIMIT_FUNCTION_ARG: MAX_FUNCTION_ARGUMENTS,
    sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: MAX_LIKE_PATTERN_BYTES,
}


def connect(path: Path) -> sqlite3.Connection:
    """Open a D1 database file the way D1 runs it: WAL, foreign keys enforced."""
    # Built at startup, used from the event loop's thread: the loop serialises access.
    conn = connect_private(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    # WAL + NORMAL survives a killed process; only power loss can drop the last commits.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # wrangler or a migration run may hold the write lock for a moment.
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def sqlite_error_text(exc: sqlite3.Error, sql: str = "") -> str:
    """SQLite's message in D1's words, e.g. "no such column: x at offset 7: SQLITE_ERROR" or
    "UNIQUE constraint failed: t.id: SQLITE_CONSTRAINT (extended: SQLITE_CONSTRAINT_UNIQUE)"."""
    name = getattr(exc, "sqlite_errorname", None)
    if name is None:  # raised by the sqlite3 module before SQLite ran anything
        if "number of bindings" in str(exc):
            return "Wrong number of parameter bindings for SQL query."
        return str(exc)
    primary_code = "_".join(name.split("_")[:2])  # SQLITE_CONSTRAINT_UNIQUE → SQLITE_CONSTRAINT
    offset = _error_offset(str(exc), sql)
    text = f"{exc}{'' if offset is None else f' at offset {offset}'}: {primary_code}"
    return text if name == primary_code else f"{text} (extended: {name})"


def _error_offset(message: str, sql: str) -> int | None:
    # SQLite's sqlite3_error_offset(), which Python does not expose, for the errors it
    # reports one: the offending token, or the first parameter past the limit.
    if message == "too many SQL variables":
        parameters = [m.start() for m in re.finditer(r"\?\d*|[:@$][A-Za-z_]\w*", sql)]
        return parameters[MAX_BOUND_PARAMETERS] if len(parameters) > MAX_BOUND_PARAMETERS else None
    token = re.fullmatch(r'near "(.+)": syntax error|no such column: (.+)', message)
    if token is None:
        return None
    at = sql.find(token.group(1) or token.group(2))
    return None if at < 0 else at


def _d1_error(exc: sqlite3.Error, sql: str) -> D1Error:
    return D1Error(f"D1_ERROR: {sqlite_error_text(exc, sql)}")


class D1Database:
    def __init__(self, path: Path) -> None:
        self._conn = connect(path)
        for limit, value in _LIMITS.items():
            self._conn.setlimit(limit, value)
        self._page_size = self._conn.execute("PRAGMA page_size").fetchone()[0]
        self._size_bytes = self._database_size()

    def prepare(self, sql: str) -> "D1PreparedStatement":
        return D1PreparedStatement(self, sql)

    async def batch(self, statements: Sequence["D1PreparedStatement"]) -> list[Record]:
        """Run every statement in one transaction: all apply, or none do."""
        with self._transaction():
            return [_result(*self._execute(s.statement, s.params)) for s in statements]

    async def exec(self, sql: str) -> Record:
        """Run raw SQL as workerd's D1 does: each non-blank line is one batch entry (all of a
        line's statements run; it counts once), the whole batch in one transaction."""
        lines = sql.strip().split("\n")
        entries = [line for line in lines if line.strip()]
        duration_ms = 0.0
        try:
            if not entries:
                raise _ExecRefused("No SQL statements detected.")
            with self._transaction():
                for line in entries:
                    for statement in _statements(line):
                        duration_ms += self._exec_statement(statement)
        except _ExecRefused as exc:
            # A failed batch comes back as one error, which D1 reports against line 1.
            raise D1Error(f"D1_EXEC_ERROR: Error in line 1: {lines[0]}: {exc}") from exc.__cause__
        return Record(count=len(entries), duration=duration_ms)

    def close(self) -> None:
        self._conn.close()

    def _exec_statement(self, statement: str) -> float:
        try:
            return self._execute_sqlite(statement, ())[2].duration
        except sqlite3.Error as exc:
            raise _ExecRefused(sqlite_error_text(exc, statement)) from exc

    def _execute(self, sql: str, params: Sequence[Any]) -> _Outcome:
        try:
            return self._execute_sqlite(sql, params)
        except sqlite3.Error as exc:
            raise _d1_error(exc, sql) from exc

    def _execute_sqlite(self, sql: str, params: Sequence[Any]) -> _Outcome:
        conn = self._conn
        changes_before = conn.total_changes
        started = time.perf_counter()
        cursor = conn.execute(sql, params)
        rows = cursor.fetchall()
        duration_ms = (time.perf_counter() - started) * 1000
        columns = [d[0] for d in cursor.description] if cursor.description else []
        changes = conn.total_changes - changes_before
        size_before = self._size_bytes
        # A statement that returned rows and changed none (a SELECT) cannot have grown the
        # file: skip the second query for the size on every read.
        if cursor.description is None or changes:
            self._size_bytes = self._database_size()
        meta = Record(
            served_by=SERVED_BY,
            served_by_region=SERVED_BY_REGION,
            served_by_primary=True,
            timings=Record(sql_duration_ms=duration_ms),
            duration=duration_ms,
            changes=changes,
            last_row_id=cursor.lastrowid,
            changed_db=changes > 0 or self._size_bytes != size_before,
            size_after=self._size_bytes,
            # SQLite does not report scan counts to Python: count what crossed the API.
            rows_read=len(rows),
            rows_written=changes,
            total_attempts=1,
        )
        return columns, [_from_sqlite(row) for row in rows], meta

    def _database_size(self) -> int:
        return self._conn.execute("PRAGMA page_count").fetchone()[0] * self._page_size

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        conn = self._conn
        try:
            # IMMEDIATE takes the write lock up front, so a second writer (wrangler, a
            # migration run) makes us wait instead of failing halfway through.
            conn.execute("BEGIN IMMEDIATE")
            yield
            conn.execute("COMMIT")
        except sqlite3.Error as exc:  # BEGIN or COMMIT failed, e.g. a deferred foreign key
            self._rollback()
            raise _d1_error(exc, "") from exc
        except BaseException:
            self._rollback()
            raise

    def _rollback(self) -> None:
        if self._conn.in_transaction:  # some errors make SQLite roll back by itself
            self._conn.execute("ROLLBACK")


class D1PreparedStatement:
    def __init__(self, db: D1Database, statement: str, params: Sequence[Any] = ()) -> None:
        self._db = db
        self.statement = statement
        self.params = params

    def bind(self, *values: Any) -> "D1PreparedStatement":
        """A new statement with these values; this one is left unchanged."""
        return D1PreparedStatement(self._db, self.statement, tuple(map(_to_sqlite, values)))

    async def first(self, colName: str | None = None) -> Any:
        columns, rows, _ = self._db._execute(self.statement, self.params)
        if not rows:
            return None
        row = Record(zip(columns, rows[0], strict=True))
        if colName is None:
            return row
        if colName not in row:
            raise D1Error(f"D1_COLUMN_NOTFOUND: Column not found ({colName})")
        return row[colName]

    async def all(self) -> Record:
        return _result(*self._db._execute(self.statement, self.params))

    async def run(self) -> Record:
        # D1's run() answers like all(), rows included (a SELECT's, or RETURNING's).
        return await self.all()

    async def raw(
        self,
        options: dict[str, Any] | None = None,
        *,
        columnNames: bool = False,
    ) -> list[list[Any]]:
        columns, rows, _ = self._db._execute(self.statement, self.params)
        table = [list(row) for row in rows]
        if columnNames or (options or {}).get("columnNames"):
            return [columns, *table]
        return table


def _result(columns: list[str], rows: list[Sequence[Any]], meta: Record) -> Record:
    results = [Record(zip(columns, row, strict=True)) for row in rows]
    return Record(success=True, results=results, meta=meta)


def _from_sqlite(row: Sequence[Any]) -> Sequence[Any]:
    # Text and NULL, most values, need no conversion: no call for them.
    return [
        value if value is None or type(value) is str else _from_sqlite_value(value) for value in row
    ]


def _from_sqlite_value(value: Any) -> Any:
    if type(value) is bytes:
        return list(value)
    if isinstance(value, int | float):
        return js_number(value)
    return value


def _to_sqlite(value: Any) -> Any:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, tuple | bytearray):
        # The SDK's python_to_rpc refuses these before D1 sees them.
        raise TypeError(f"{type(value)} cannot be sent over RPC.")
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_SAFE_INTEGER:
        raise D1Error(_type_error("bigint", value))
    if isinstance(value, int | float):
        return float(value)  # a JS number, which D1 binds as REAL (true and false too)
    if isinstance(value, bytes | memoryview):
        return bytes(value)
    # D1 takes an array of byte values as a BLOB.
    if isinstance(value, list) and all(type(b) is int and 0 <= b < 256 for b in value):
        return bytes(value)
    raise D1Error(_type_error("function" if callable(value) else "object", value))


def _type_error(js_type: str, value: Any) -> str:
    return f"D1_TYPE_ERROR: Type '{js_type}' not supported for value '{js_string(value)}'"


class _ExecRefused(Exception):
    """A line of `exec` that D1 refuses before SQLite runs it."""


_COMMENTS = re.compile(r"--[^\n]*|/\*.*?(\*/|$)", re.DOTALL)


def _statements(line: str) -> list[str]:
    """The statements of one line; any piece that holds only a comment is refused, as D1
    refuses `SELECT 1; -- why`."""
    statements, pending = [], ""
    pieces = line.split(";")
    for index, piece in enumerate(pieces):
        pending += piece if index == len(pieces) - 1 else piece + ";"
        # A `;` inside a quote, a comment or a trigger body does not end the statement.
        if index < len(pieces) - 1 and not sqlite3.complete_statement(pending):
            continue
        if _COMMENTS.sub("", pending).strip(" \t\r;"):
            statements.append(pending)
        elif pending.strip():
            raise _ExecRefused("SQL code did not contain a statement.")
        pending = ""
    return statements
