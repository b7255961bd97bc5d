"""`ctx.storage` of a SQLite-backed Durable Object: one SQLite file per object.

The KV API lives in the hidden table `_cf_KV` (as on Cloudflare) and the alarm in
`_cf_ALARM`; the SQL API (`storage.sql.exec`) may not touch `_cf_` tables nor open its own
transactions. Values are stored with `twin.values.dumps`.

Transactions are SQLite savepoints. Cloudflare also holds other events of the object back
while an async transaction awaits; locally an event that interleaves at such an await
shares the open transaction.
"""

from __future__ import annotations

import datetime
import inspect
import itertools
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from twin import values
from twin.errors import DurableObjectError
from twin.private_files import connect_private
from twin.sql import SqlStorage

T = TypeVar("T")

MAX_KEY_BYTES = 2048
MAX_VALUE_BYTES = 2 * 1024 * 1024  # SQLite-backed objects: 2 MB per value
MAX_KEYS_PER_CALL = 128

_SCHEMA = """
CREATE TABLE IF NOT EXISTS _cf_KV (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS _cf_ALARM (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    scheduled_ms INTEGER NOT NULL,
    retry_count INTEGER NOT NULL
);
"""
_NO_ALARM_HANDLER = (
    "Your Durable Object class must have an alarm() handler in order to call setAlarm()"
)
_MISSING: Any = object()


class DurableObjectStorage:
    """The storage of one object. The file is created on first use.

    `on_alarm_change(ms | None)` tells the alarm scheduler about every change; it runs
    before a new alarm is written, so the scheduler knows at least every pending alarm.
    """

    def __init__(
        self,
        path: Path,
        on_alarm_change: Callable[[int | None], None] = lambda ms: None,
        *,
        has_alarm_handler: bool = True,
    ) -> None:
        self.path = path
        self._on_alarm_change = on_alarm_change
        self._has_alarm_handler = has_alarm_handler
        self._db: sqlite3.Connection | None = None
        self._trusted = False
        self._savepoints = itertools.count()
        self.sql = SqlStorage(lambda: self._conn)

    # ---- KV API ----------------------------------------------------------------------

    async def get(self, keys: str | list[str]) -> Any:
        if isinstance(keys, list):
            _check_keys(keys)
            marks = ",".join("?" * len(keys))
            rows = self._internal(
                f"SELECT key, value FROM _cf_KV WHERE key IN ({marks}) ORDER BY key", keys
            )
            return {key: values.loads(blob) for key, blob in rows}
        _check_key(keys)
        rows = self._internal("SELECT value FROM _cf_KV WHERE key = ?", [keys])
        return values.loads(rows[0][0]) if rows else None

    async def put(self, key: str | dict[str, Any], value: Any = _MISSING) -> None:
        if isinstance(key, dict) == (value is _MISSING):
            entries = key if isinstance(key, dict) else {key: value}
        else:
            raise TypeError("put() takes a key and a value, or a dict of entries")
        _check_keys(list(entries))
        rows = [(k, _blob(v)) for k, v in entries.items()]
        with self._atomic() as db:
            db.executemany("INSERT OR REPLACE INTO _cf_KV VALUES (?, ?)", rows)

    async def delete(self, keys: str | list[str]) -> bool | int:
        many = isinstance(keys, list)
        batch = keys if isinstance(keys, list) else [keys]
        _check_keys(batch)
        with self._atomic() as db:
            deleted = sum(
                db.execute("DELETE FROM _cf_KV WHERE key = ?", [key]).rowcount
                for key in dict.fromkeys(batch)
            )
        return deleted if many else deleted > 0

    async def list(
        self,
        *,
        prefix: str | None = None,
        start: str | None = None,
        startAfter: str | None = None,
        end: str | None = None,
        limit: int | None = None,
        reverse: bool = False,
    ) -> dict[str, Any]:
        if start is not None and startAfter is not None:
            raise TypeError("list() cannot be called with both start and startAfter values.")
        if limit is not None and limit <= 0:
            raise ValueError("List limit must be positive.")
        where, args = ["1"], []
        for clause, bound in (("key >= ?", start), ("key > ?", startAfter), ("key < ?", end)):
            if bound is not None:
                where.append(clause)
                args.append(bound)
        if prefix:
            where.append("key >= ? AND substr(key, 1, ?) = ?")
            args += [prefix, len(prefix), prefix]
        query = f"SELECT key, value FROM _cf_KV WHERE {' AND '.join(where)} ORDER BY key"
        query += " DESC" if reverse else ""
        query += f" LIMIT {int(limit)}" if limit is not None else ""
        return {key: values.loads(blob) for key, blob in self._internal(query, args)}

    async def deleteAll(self) -> None:
        """Every key and SQL table goes; the alarm stays (as on Cloudflare)."""
        with self._atomic() as db:
            db.execute("PRAGMA defer_foreign_keys = ON")  # tables go in any order
            tables = db.execute(
                "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view')"
            ).fetchall()
            for kind, name in tables:
                if not name.startswith(("sqlite_", "_cf_")):
                    db.execute(f'DROP {kind.upper()} IF EXISTS "{name}"')
            db.execute("DELETE FROM _cf_KV")

    async def sync(self) -> None:
        """Every write is already durable when it returns."""

    # ---- transactions ----------------------------------------------------------------

    async def transaction(self, closure: Callable[[DurableObjectTransaction], Awaitable[T]]) -> T:
        txn = DurableObjectTransaction(self)
        name = self._begin()
        try:
            result = await closure(txn)
        except BaseException:
            self._end(name, rollback=True)
            raise
        self._end(name, rollback=txn.rolled_back)
        return result

    def transactionSync(self, closure: Callable[[], T]) -> T:
        name = self._begin()
        try:
            result = closure()
            if inspect.isawaitable(result):
                raise TypeError("transactionSync() callback must not be async")
        except BaseException:
            self._end(name, rollback=True)
            raise
        self._end(name, rollback=False)
        return result

    # ---- alarm -----------------------------------------------------------------------

    async def getAlarm(self) -> int | None:
        return self.alarm_state()[0]

    async def setAlarm(self, scheduled: float | datetime.datetime) -> None:
        if not self._has_alarm_handler:
            raise DurableObjectError(_NO_ALARM_HANDLER)
        at_ms = _epoch_ms(scheduled)
        self._on_alarm_change(at_ms)
        self.store_alarm(at_ms, retries=0)

    async def deleteAlarm(self) -> None:
        self.store_alarm(None, retries=0)
        self._on_alarm_change(None)

    def alarm_state(self) -> tuple[int | None, int]:
        """(scheduled ms since the epoch or None, retries so far): for the scheduler."""
        rows = self._internal("SELECT scheduled_ms, retry_count FROM _cf_ALARM", [])
        return (rows[0][0], rows[0][1]) if rows else (None, 0)

    def store_alarm(self, at_ms: int | None, retries: int) -> None:
        """Write the alarm without telling the scheduler: for the scheduler itself."""
        with self._trust():
            if at_ms is None:
                self._conn.execute("DELETE FROM _cf_ALARM")
            else:
                self._conn.execute(
                    "INSERT OR REPLACE INTO _cf_ALARM VALUES (1, ?, ?)", [at_ms, retries]
                )

    # ---- the file --------------------------------------------------------------------

    def close(self) -> None:
        """Close the file; the next use opens it again."""
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            db = connect_private(self.path, isolation_level=None)
            db.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;" + _SCHEMA)
            db.execute("PRAGMA foreign_keys = ON")
            db.set_authorizer(self._authorize)
            self._db = db
        return self._db

    def _authorize(self, action: int, arg1: str | None, arg2: str | None, *_: Any) -> int:
        if self._trusted:
            return sqlite3.SQLITE_OK
        return self.sql.authorize(action, arg1, arg2)

    @contextmanager
    def _trust(self) -> Iterator[None]:
        prior, self._trusted = self._trusted, True
        try:
            yield
        finally:
            self._trusted = prior

    def _internal(self, query: str, args: list[Any]) -> list[Any]:
        with self._trust():
            return self._conn.execute(query, args).fetchall()

    @contextmanager
    def _atomic(self) -> Iterator[sqlite3.Connection]:
        """The runtime's own writes, all or nothing (every storage call is atomic)."""
        name = self._begin()
        try:
            with self._trust():
                yield self._conn
        except BaseException:
            self._end(name, rollback=True)
            raise
        self._end(name, rollback=False)

    def _begin(self) -> str:
        name = f"_cf_txn_{next(self._savepoints)}"
        self._internal(f"SAVEPOINT {name}", [])
        return name

    def _end(self, name: str, *, rollback: bool) -> None:
        if rollback:
            self._internal(f"ROLLBACK TO {name}", [])
        self._internal(f"RELEASE {name}", [])
        if rollback:
            # The scheduler may have heard of an alarm change that was just undone.
            self._on_alarm_change(self.alarm_state()[0])


class DurableObjectTransaction:
    """The `txn` a `transaction()` closure receives: storage's API plus `rollback()`."""

    _METHODS = frozenset({"get", "put", "delete", "list", "getAlarm", "setAlarm", "deleteAlarm"})

    def __init__(self, storage: DurableObjectStorage) -> None:
        self._storage = storage
        self.rolled_back = False

    def rollback(self) -> None:
        self.rolled_back = True

    def __getattr__(self, name: str) -> Any:
        if name not in self._METHODS:
            raise AttributeError(name)
        if self.rolled_back:
            raise DurableObjectError("Cannot use a transaction after calling rollback().")
        return getattr(self._storage, name)


def _check_keys(keys: list[str]) -> None:
    if len(keys) > MAX_KEYS_PER_CALL:
        raise ValueError(f"Cannot operate on more than {MAX_KEYS_PER_CALL} keys at once.")
    for key in keys:
        _check_key(key)


def _check_key(key: Any) -> None:
    if not isinstance(key, str):
        raise TypeError(f"Storage keys must be strings, not {type(key).__name__}")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise ValueError(f"Keys cannot be larger than {MAX_KEY_BYTES} bytes.")


def _blob(value: Any) -> bytes:
    blob = values.dumps(value)
    if len(blob) > MAX_VALUE_BYTES:
        raise ValueError(
            f"Values cannot be larger than {MAX_VALUE_BYTES} bytes. "
            f"A value of size {len(blob)} was provided."
        )
    return blob


def _epoch_ms(scheduled: float | datetime.datetime) -> int:
    if isinstance(scheduled, datetime.datetime):
        aware = scheduled if scheduled.tzinfo else scheduled.replace(tzinfo=datetime.UTC)
        return int(aware.timestamp() * 1000)
    if isinstance(scheduled, bool) or not isinstance(scheduled, int | float):
        raise TypeError("setAlarm() takes milliseconds since the epoch or a datetime")
    return int(scheduled)
