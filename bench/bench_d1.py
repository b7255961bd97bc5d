"""How fast the local D1 twin answers: primary-key SELECTs, and 100-row insert batches.

Run: .venv/bin/python bench/bench_d1.py   (targets: >= 20,000 SELECT/s, >= 50,000 rows/s)
     .venv/bin/python bench/bench_d1.py --smoke   (1,000 rows: that it runs, no figures)
Each batch is 100 one-row INSERTs in `db.batch`: D1 caps a query at 100 bound
parameters, so that is how a Worker writes 100 rows at once. The baseline is the stdlib
`sqlite3` doing the same work on a file opened the same way (`executemany` in one
transaction per batch; `fetchone` per key), measured in the same run.
"""

import argparse
import asyncio
import sqlite3
import tempfile
import time
from pathlib import Path

from twin.d1 import D1Database, connect

ROWS = 100_000
BATCH_ROWS = 100
SELECTS = 50_000
SMOKE_ROWS = 1_000
SMOKE_SELECTS = 1_000


class BenchError(RuntimeError):
    """An answer that was not what was written: the figures would mean nothing."""


def check_row(row: object, key: int) -> None:
    expected = (key, f"item-{key}", f"user-{key % 97}", key * 3)
    if row is None or tuple(row[name] for name in ("id", "name", "owner", "size")) != expected:
        raise BenchError(f"SELECT of id {key} returned {row!r}, not {expected}")


async def insert_rows(db: D1Database, rows: int) -> float:
    insert = db.prepare("INSERT INTO items (id, name, owner, size) VALUES (?, ?, ?, ?)")
    started = time.perf_counter()
    for first in range(0, rows, BATCH_ROWS):
        results = await db.batch(
            [
                insert.bind(i, f"item-{i}", f"user-{i % 97}", i * 3)
                for i in range(first, first + BATCH_ROWS)
            ]
        )
        if [result.meta.changes for result in results] != [1] * BATCH_ROWS:
            raise BenchError(f"a batch from row {first} did not insert {BATCH_ROWS} rows")
    return rows / (time.perf_counter() - started)


async def select_by_key(db: D1Database, rows: int, selects: int) -> float:
    select = db.prepare("SELECT id, name, owner, size FROM items WHERE id = ?")
    started = time.perf_counter()
    for i in range(selects):
        check_row(await select.bind(i * 7 % rows).first(), i * 7 % rows)
    return selects / (time.perf_counter() - started)


def raw_sqlite(path: Path, rows: int, selects: int) -> tuple[float, float]:
    conn = connect(path)
    conn.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, owner TEXT, size INTEGER)")
    insert = "INSERT INTO items (id, name, owner, size) VALUES (?, ?, ?, ?)"
    started = time.perf_counter()
    for first in range(0, rows, BATCH_ROWS):
        conn.execute("BEGIN")
        conn.executemany(
            insert,
            [(i, f"item-{i}", f"user-{i % 97}", i * 3) for i in range(first, first + BATCH_ROWS)],
        )
        conn.execute("COMMIT")
    inserts = rows / (time.perf_counter() - started)
    conn.row_factory = sqlite3.Row
    started = time.perf_counter()
    for i in range(selects):
        key = i * 7 % rows
        check_row(
            conn.execute("SELECT id, name, owner, size FROM items WHERE id = ?", (key,)).fetchone(),
            key,
        )
    per_second = selects / (time.perf_counter() - started)
    conn.close()
    return inserts, per_second


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="1,000 rows, no figures")
    smoke = parser.parse_args().smoke
    rows, selects = (SMOKE_ROWS, SMOKE_SELECTS) if smoke else (ROWS, SELECTS)
    with tempfile.TemporaryDirectory() as folder:
        db = D1Database(Path(folder) / "bench.sqlite")
        await db.exec(
            "CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT, owner TEXT, size INTEGER)"
        )
        rows_per_second = await insert_rows(db, rows)
        selects_per_second = await select_by_key(db, rows, selects)
        db.close()
        raw_inserts, raw_selects = raw_sqlite(Path(folder) / "raw.sqlite", rows, selects)
    print(
        f"insert: {rows_per_second:,.0f} rows/s in {BATCH_ROWS}-row batches ({rows:,} rows); "
        f"raw sqlite3 {raw_inserts:,.0f} rows/s; ratio {rows_per_second / raw_inserts:.2f}x"
    )
    print(
        f"select: {selects_per_second:,.0f} primary-key SELECT/s ({selects:,} queries); "
        f"raw sqlite3 {raw_selects:,.0f}/s; ratio {selects_per_second / raw_selects:.2f}x"
    )


if __name__ == "__main__":
    asyncio.run(main())
