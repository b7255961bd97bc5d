"""One D1 table of rows with a lifecycle: the guarded reads and writes nodes and workspaces share.

    table = GuardedTable("nodes", COLUMNS, Kind.NODE, Node.from_row, NodeNotFound)
    await table.find(deployment, id)                  any user's row, or None
    await table.owned(deployment, user_id, id)        the owner's; anyone else's is NotFound
    await table.where(deployment, condition, *binds)  rows matching a fixed SQL fragment
    await table.insert(deployment, **values)          a new row, created_at/updated_at stamped
    await table.set_status(deployment, row, new, **fields)
        a state change checked by worker.states, guarded in the WHERE: of two racing
        changes only one applies, the other gets the same InvalidTransition as an illegal one
    await table.move(deployment, id, from_states, new, **fields)
        the same, only from `from_states`; None when the row has moved on (a stale event)
    await table.update(deployment, id, **fields)      fields without a state change
    await table.delete(deployment, id)

A table without a lifecycle (projects, credentials) lists a user's rows with `owned_rows`.

Every write stamps `updated_at` with the deployment's clock, in `iso` format (D1's own
default format, so text order is time order). Column names come from our code, never
from a request; values are always bound.

`where` reads each row as one JSON text (`json_array` of its columns, built by SQLite):
the runtime hands Python one value per row instead of one per column (on Cloudflare every
value crosses from JS into Python and is walked again by the SDK), and `json.loads` is C.
Values read back as D1 gives them: an INTEGER column's numbers as `int` (no table has a
REAL column), NULL as None.
"""

import datetime
import json
import logging
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from worker.deployment import Deployment
from worker.errors import NotFound
from worker.logs import event
from worker.states import Kind, sources, transition

log = logging.getLogger("sam.db")

# D1 refuses a function call with more arguments (SQLITE_LIMIT_FUNCTION_ARG), and
# json_array refuses BLOBs: the guarded tables have neither.
MAX_JSON_ARRAY_COLUMNS = 32

Row = TypeVar("Row")


def iso(epoch: float) -> str:
    """`2025-01-02T03:04:05.678Z`: the format of D1's defaults, so text order is time order."""
    moment = datetime.datetime.fromtimestamp(epoch, datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


async def owned_rows(
    deployment: Deployment, table: str, columns: str, user_id: str, of_row: Callable[[Any], Row]
) -> list[Row]:
    """The user's rows of `table`, oldest first (creation order, then id for a tie)."""
    result = (
        await deployment.env.DATABASE.prepare(
            f"SELECT {columns} FROM {table} WHERE user_id = ? ORDER BY created_at, id"
        )
        .bind(user_id)
        .all()
    )
    return [of_row(row) for row in result["results"]]


class GuardedTable(Generic[Row]):
    def __init__(
        self,
        name: str,
        columns: str,
        kind: Kind,
        of_row: Callable[[Any], Row],
        not_found: Callable[[], NotFound],
    ) -> None:
        self.name = name
        self.columns = columns
        self._names = [column.strip() for column in columns.split(",")]
        assert len(self._names) <= MAX_JSON_ARRAY_COLUMNS, (
            f"{name}: too many columns for json_array"
        )
        self.kind = kind
        self.of_row = of_row
        self.not_found = not_found

    async def find(self, deployment: Deployment, row_id: str) -> Row | None:
        row = await self._first(
            deployment, f"SELECT {self.columns} FROM {self.name} WHERE id = ?", row_id
        )
        return None if row is None else self.of_row(row)

    async def owned(self, deployment: Deployment, user_id: str, row_id: str) -> Row:
        """The caller's row; another user's id is exactly as unknown as a made-up one."""
        row = await self._first(
            deployment,
            f"SELECT {self.columns} FROM {self.name} WHERE id = ? AND user_id = ?",
            row_id,
            user_id,
        )
        if row is None:
            raise self.not_found()
        return self.of_row(row)

    async def where(self, deployment: Deployment, condition: str, *bindings: Any) -> list[Row]:
        statement = deployment.env.DATABASE.prepare(
            f"SELECT json_array({self.columns}) FROM {self.name} WHERE {condition}"
        )
        rows = await (statement.bind(*bindings) if bindings else statement).raw()
        # One parse for all rows: each is a JSON array already.
        values = json.loads(f"[{','.join(text for (text,) in rows)}]")
        return [self.of_row(dict(zip(self._names, row, strict=True))) for row in values]

    async def insert(self, deployment: Deployment, **values: Any) -> Row:
        moment = iso(deployment.now())
        values = {**values, "created_at": moment, "updated_at": moment}
        marks = ", ".join("?" * len(values))
        row = await self._first(
            deployment,
            f"INSERT INTO {self.name} ({', '.join(values)}) VALUES ({marks}) "
            f"RETURNING {self.columns}",
            *values.values(),
        )
        return self.of_row(row)

    async def set_status(self, deployment: Deployment, row: Any, new: str, **fields: Any) -> Row:
        transition(self.kind, row.status, new)
        moved = await self._guarded(deployment, row.id, sources(self.kind, new), new, fields)
        if moved is None:
            current: Any = await self.find(deployment, row.id)
            if current is None:
                raise self.not_found()
            transition(self.kind, current.status, new)  # raises: someone else moved it first
            raise AssertionError(
                f"a guarded {self.kind} update matched nothing"
            )  # pragma: no cover
        return moved

    async def move(
        self,
        deployment: Deployment,
        row_id: str,
        from_states: tuple[str, ...],
        new: str,
        **fields: Any,
    ) -> Row | None:
        for state in from_states:
            transition(self.kind, state, new)  # a programming error if not allowed
        return await self._guarded(deployment, row_id, [str(s) for s in from_states], new, fields)

    async def update(self, deployment: Deployment, row_id: str, **fields: Any) -> None:
        assignments = ", ".join(f"{name} = ?" for name in fields)
        await (
            deployment.env.DATABASE.prepare(
                f"UPDATE {self.name} SET {assignments}, updated_at = ? WHERE id = ?"
            )
            .bind(*fields.values(), iso(deployment.now()), row_id)
            .run()
        )

    async def delete(self, deployment: Deployment, row_id: str) -> None:
        statement = f"DELETE FROM {self.name} WHERE id = ?"
        await deployment.env.DATABASE.prepare(statement).bind(row_id).run()

    async def _guarded(
        self,
        deployment: Deployment,
        row_id: str,
        from_states: list[str],
        new: str,
        fields: dict[str, Any],
    ) -> Row | None:
        assignments = "".join(f", {name} = ?" for name in fields)
        marks = ", ".join("?" * len(from_states))
        row = await self._first(
            deployment,
            f"UPDATE {self.name} SET status = ?, updated_at = ?{assignments} "
            f"WHERE id = ? AND status IN ({marks}) RETURNING {self.columns}",
            str(new),
            iso(deployment.now()),
            *fields.values(),
            row_id,
            *from_states,
        )
        if row is None:
            return None
        event(log, f"{self.kind}.status", **{f"{self.kind}_id": row_id, "status": new})
        return self.of_row(row)

    async def _first(self, deployment: Deployment, sql: str, *bindings: Any) -> Any:
        return await deployment.env.DATABASE.prepare(sql).bind(*bindings).first()
