"""The D1 twin: one SQLite file per database, as `workers-runtime-sdk` 1.9.x shows D1.

Rows, results and `meta` are `Record`s. BLOBs come back as `list[int]`: D1 sends them as
JSON arrays of byte values and Pyodide turns those into Python lists. Statements run
inline on the caller's thread: SQLite answers in microseconds, a thread hop would cost
more than the query.
"""

import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from twin.errors import D1Error
from twin.records import Record

# D1's documented limits (developers.cloudflare.com/d1/platform/limits). SQLite enforces
# them itself, so the errors read exactly as D1's do ("too many SQL variables", ...).
MAX_BOUND_PARAMETERS = 100
MAX_SQL_STATEMENT_BYTES = 100_000
MAX_VALUE_BYTES = 2_000_000  # a string, BLOB or whole row
MAX_COLUMNS = 100
MAX_FUNCTION_ARGUMENTS = 32
MAX_LIKE_PATTERN_BYTES = 50
# Larger Python ints cross into JavaScript as BigInt, which D1's bind() rejects.
MAX_SAFE_INTEGER = 2**53 - 1

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
    path.parent.mkdir(parents=True, exist_ok=True)
    # Built at startup, used from the event loop's thread: the loop serialises access.
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode = WAL")
    # WAL + NORMAL survives a killed process; only power loss can drop the last commits.
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    # wrangler or a migration run may hold the write lock for a moment.
    conn.execute("PRAGMA busy_timeout = 5000")
    return conn


def sqlite_error_text(exc: sqlite3.Error) -> str:
    """SQLite's message in D1's words, e.g. "no such table: x: SQLITE_ERROR"."""
    name = getattr(exc, "sqlite_errorname", None)
    if name is None:  # raised by the sqlite3 module before SQLite ran anything
        if "number of bindings" in str(exc):
            return "Wrong number of parameter bindings for SQL query."
        return str(exc)
    primary_code = "_".join(name.split("_")[:2])  # SQLITE_CONSTRAINT_UNIQUE → SQLITE_CONSTRAINT
    return f"{exc}: {primary_code}"


def _d1_error(exc: sqlite3.Error) -> D1Error:
    return D1Error(f"D1_ERROR: {sqlite_error_text(exc)}")


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
        """Run raw SQL, one statement per line as D1 splits it; no bindings."""
        lines = sql.strip().split("\n")
        count, duration_ms = 0, 0.0
        with self._transaction():
            for number, line in enumerate(lines, start=1):
                if not _has_sql(line):
                    continue
                try:
                    _, _, meta = self._execute_sqlite(line, ())
                except sqlite3.Error as exc:
                    reason = sqlite_error_text(exc)
                    raise D1Error(
                        f"D1_EXEC_ERROR: Error in line {number}: {line}: {reason}"
                    ) from exc
                count += 1
                duration_ms += meta.duration
        return Record(count=count, duration=duration_ms)

    def close(self) -> None:
        self._conn.close()

    def _execute(self, sql: str, params: Sequence[Any]) -> _Outcome:
        try:
            return self._execute_sqlite(sql, params)
        except sqlite3.Error as exc:
            raise _d1_error(exc) from exc

    def _execute_sqlite(self, sql: str, params: Sequence[Any]) -> _Outcome:
        conn = self._conn
        changes_before = conn.total_changes
        started = time.perf_counter()
        cursor = conn.execute(sql, params)
        rows = cursor.fetchall()
        duration_ms = (time.perf_counter() - started) * 1000
        columns = [d[0] for d in cursor.description] if cursor.description else []
        changes = conn.total_changes - changes_before
        size_before, self._size_bytes = self._size_bytes, self._database_size()
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
            raise _d1_error(exc) from exc
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
    if bytes in map(type, row):
        return [list(value) if type(value) is bytes else value for value in row]
    return row


def _to_sqlite(value: Any) -> Any:
    if value is None or isinstance(value, str | float):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise D1Error(_type_error("bigint", value))
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    # D1 takes an array of byte values as a BLOB.
    if isinstance(value, list) and all(type(b) is int and 0 <= b < 256 for b in value):
        return bytes(value)
    raise D1Error(_type_error("function" if callable(value) else "object", value))


def _type_error(js_type: str, value: Any) -> str:
    return f"D1_TYPE_ERROR: Type '{js_type}' not supported for value '{value}'"


def _has_sql(line: str) -> bool:
    stripped = line.strip()
    return bool(stripped) and not stripped.startswith("--")
