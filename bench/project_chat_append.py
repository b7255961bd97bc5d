"""Part 1 of bench_project_chat.py: ProjectData append on the twin vs raw SQLite inserts.

The runtime is the one `sam dev` builds from the real wrangler.toml (D1 migrated, the
PROJECT_DATA namespace with one SQLite file per object), in this process. One chat linked
to a workspace takes agent frames through `ingest` (the RPC the ingest route calls, what a
node's outbox sends): one message a call, then batches of 50. The baseline is the stdlib
`sqlite3` on a file opened as the twin opens its own (WAL), one INSERT a transaction, then
50 in one, in the same run. Every message is read back afterwards: a lost or doubled one
fails the run.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.agent_workspace import BenchError
from twin import env as local_env
from twin import upstream
from twin.clock import SystemClock
from twin.d1 import connect
from twin.wrangler import load
from wire.chat import MAX_PAGE_MESSAGES
from worker.auth.crypto import generate_key

ROOT = Path(__file__).resolve().parents[1]
BATCH = 50
TARGET_SINGLE_PER_SECOND = 2_000
PROJECT_ID = "p-bench"
WORKSPACE_ID = "ws-bench"
AGENT_SESSION_ID = "as-bench"


@dataclass(frozen=True)
class AppendFigures:
    messages: int
    single_per_second: float
    batch_per_second: float
    raw_single_per_second: float
    raw_batch_per_second: float

    def report(self) -> str:
        verdict = "within" if self.single_per_second >= TARGET_SINGLE_PER_SECOND else "UNDER"
        return "\n".join(
            [
                f"ProjectData append on the twin ({self.messages:,} messages a side):",
                f"  single     {self.single_per_second:9,.0f} msg/s   raw sqlite3 "
                f"{self.raw_single_per_second:9,.0f}/s   ratio "
                f"{self.single_per_second / self.raw_single_per_second:.2f}x   ({verdict} the "
                f"{TARGET_SINGLE_PER_SECOND:,} msg/s target)",
                f"  batch {BATCH:>3}  {self.batch_per_second:9,.0f} msg/s   raw sqlite3 "
                f"{self.raw_batch_per_second:9,.0f}/s   ratio "
                f"{self.batch_per_second / self.raw_batch_per_second:.2f}x",
            ]
        )


def frame(seq: int) -> dict[str, Any]:
    """An agent_message_chunk as the gateway records it: the commonest message of a chat."""
    return {
        "seq": seq,
        "type": "update",
        "update": {
            "sessionUpdate": "agent_message_chunk",
            "content": {"type": "text", "text": f"chunk {seq} of the agent's answer, streamed "},
        },
    }


def outbox_message(chat_id: str, seq: int) -> dict[str, Any]:
    return {
        "id": f"{AGENT_SESSION_ID}:{seq}",
        "project_id": PROJECT_ID,
        "chat_id": chat_id,
        "frame": frame(seq),
        "created_at": datetime.now(UTC).isoformat(),
    }


async def _ingest_all(stub: Any, chat_id: str, first: int, count: int, size: int) -> float:
    """Messages first..first+count-1 in calls of `size`; messages per second."""
    began = time.perf_counter()
    for start in range(first, first + count, size):
        batch = [outbox_message(chat_id, seq) for seq in range(start, start + size)]
        result = await stub.ingest(PROJECT_ID, WORKSPACE_ID, batch, time.time())
        if (result["accepted"], result["duplicates"], result.get("refused", 0)) != (size, 0, 0):
            raise BenchError(f"ingest of {size} from seq {start} answered {result}")
    return count / (time.perf_counter() - began)


async def _read_back(stub: Any, chat_id: str, expected: int) -> None:
    ids: list[str] = []
    after = 0
    while True:
        page = await stub.messages(PROJECT_ID, chat_id, after, None, MAX_PAGE_MESSAGES)
        if not page:
            break
        ids += [message["id"] for message in page]
        after = page[-1]["seq"]
    wanted = [f"{AGENT_SESSION_ID}:{seq}" for seq in range(1, expected + 1)]
    if ids != wanted:
        raise BenchError(f"read back {len(ids)} messages, not the {expected} ingested in order")


async def project_data_rates(data_dir: Path, messages: int) -> tuple[float, float]:
    """(single, batched) messages per second through ProjectData's ingest."""
    runtime = local_env.build(
        load(ROOT / "wrangler.toml"),
        data_dir,
        SystemClock(),
        {"SAM_ENVIRONMENT": "development", "SAM_ENCRYPTION_KEY": generate_key()},
    )
    try:
        stub = runtime.env.PROJECT_DATA.getByName(PROJECT_ID)
        chat_id = "c-" + secrets.token_hex(6)
        now = time.time()
        await stub.create_chat(PROJECT_ID, chat_id, "u-bench", "append benchmark", now)
        await stub.link(PROJECT_ID, chat_id, WORKSPACE_ID, AGENT_SESSION_ID, "run-bench", now)
        single = await _ingest_all(stub, chat_id, 1, messages, 1)
        batched = await _ingest_all(stub, chat_id, messages + 1, messages, BATCH)
        await _read_back(stub, chat_id, 2 * messages)
    finally:
        runtime.close()
        await upstream.close()
    return single, batched


def raw_sqlite_rates(path: Path, messages: int) -> tuple[float, float]:
    """The same rows (id, chat, role, JSON frame, time) into a plain table, same two ways."""
    conn = connect(path)
    conn.execute(
        "CREATE TABLE messages (seq INTEGER PRIMARY KEY, id TEXT UNIQUE, chat_id TEXT,"
        " role TEXT, frame TEXT, created_at TEXT)"
    )
    insert = "INSERT INTO messages (id, chat_id, role, frame, created_at) VALUES (?, ?, ?, ?, ?)"

    def row(seq: int) -> tuple[str, str, str, str, str]:
        message = outbox_message("c-raw", seq)
        return message["id"], "c-raw", "assistant", repr(message["frame"]), message["created_at"]

    rates = []
    for first, size in ((1, 1), (messages + 1, BATCH)):
        began = time.perf_counter()
        for start in range(first, first + messages, size):
            conn.execute("BEGIN")
            conn.executemany(insert, [row(seq) for seq in range(start, start + size)])
            conn.execute("COMMIT")
        rates.append(messages / (time.perf_counter() - began))
    stored = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    conn.close()
    if stored != 2 * messages:
        raise BenchError(f"raw sqlite3 holds {stored} rows, not {2 * messages}")
    return rates[0], rates[1]


async def measure_append(folder: Path, messages: int) -> AppendFigures:
    # The message count is a multiple of the batch, so both halves write the same rows.
    messages = max(BATCH, messages // BATCH * BATCH)
    folder.mkdir(parents=True, exist_ok=True)
    single, batched = await project_data_rates(folder / ".sam", messages)
    raw_single, raw_batched = raw_sqlite_rates(folder / "raw.sqlite", messages)
    return AppendFigures(messages, single, batched, raw_single, raw_batched)
