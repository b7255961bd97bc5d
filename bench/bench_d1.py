"""How fast the local D1 twin answers: primary-key SELECTs, and 100-row insert batches.

Run: .venv/bin/python bench/bench_d1.py   (targets: >= 20,000 SELECT/s, >= 50,000 rows/s)
Each batch is 100 one-row INSERTs in `db.batch`: D1 caps a query at 100 bound
parameters, so that is how a Worker writes 100 rows at once. The baseline is the stdlib
`sqlite3` doing the same work on a file opened the same way (`executemany` in one
transaction per batch; `fetchone` per key), measured in the same run.
"""

import asyncio
import tempfile
import time
from pathlib import Path

from twin.d1 import D1Database, connect

ROWS = 100_000
BATCH_ROWS = 100
SELECTS = 50_000


async def insert_rows(db: D1Database) -> float:
    insert = db.prepare("INSERT INTO items (id, name, owner, size) VALUES (?, ?, ?, ?)")
    started = time.perf_counter()
    for first in range(0, ROWS, BATCH_ROWS):
        await db.batch(
            [
                insert.bind(i, f"item-{i}", f"user-{i % 97}", i * 3)
                for i in range(first, first + BATCH_ROWS)
            ]
        )
    return ROWS / (time.perf_counter() - started)


async def select_by_key(db: D1Database) -> float:
    select = db.prepare("SELECT id, name, owner, size FROM items WHERE id = ?")
    started = time.perf_counter()
    for i in range(SELECTS):
        row = await select.bind(i * 7 % ROWS).first()
        assert row is not None
    return SELECTS / (time.perf_counter() - started)


def raw_sqlite(path: Path) -> tuple[float, float]:
    conn = connect(path)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, owner TEXT, size INTEGER)")
    insert = "INSERT INTO items (id, name, owner, size) VALUES (?, ?, ?, ?)"
    started = time.perf_counter()
    for first in range(0, ROWS, BATCH_ROWS):
        conn.execute("BEGIN")
        conn.executemany(
            insert,
            [(i, f"item-{i}", f"user-{i % 97}", i * 3) for i in range(first, first + BATCH_ROWS)],
        )
        conn.execute("COMMIT")
    inserts = ROWS / (time.perf_counter() - started)
    started = time.perf_counter()
    for i in range(SELECTS):
        row = conn.execute("SELECT id, name, owner, size FROM items WHERE id = ?", (i * 7 % ROWS,))
        assert row.fetchone() is not None
    selects = SELECTS / (time.perf_counter() - started)
    conn.close()
    return inserts, selects


async def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        db = D1Database(Path(folder) / "bench.sqlite")
        await db.exec(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, owner TEXT, size INTEGER)"
        )
        rows_per_second = await insert_rows(db)
        selects_per_second = await select_by_key(db)
        db.close()
        raw_inserts, raw_selects = raw_sqlite(Path(folder) / "raw.sqlite")
    print(
        f"insert: {rows_per_second:,.0f} rows/s in {BATCH_ROWS}-row batches ({ROWS:,} rows); "
        f"raw sqlite3 {raw_inserts:,.0f} rows/s; ratio {rows_per_second / raw_inserts:.2f}x"
    )
    print(
        f"select: {selects_per_second:,.0f} primary-key SELECT/s ({SELECTS:,} queries); "
        f"raw sqlite3 {raw_selects:,.0f}/s; ratio {selects_per_second / raw_selects:.2f}x"
    )


if __name__ == "__main__":
    asyncio.run(main())
