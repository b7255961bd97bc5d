"""Part 2 of bench_project_chat.py: how late a chat's messages reach 50 viewers of it.

Both measured on one chat, linked to a running workspace of a local node, with V viewers
on its WebSocket through the edge (the app host, the user's cookie), each caught up first:

- agent update → viewer: one turn of the real Claude Code adapter whose scripted answer
  streams in BLOCKS text blocks (two deltas each, as the scripted model splits them, one
  every EVERY_MS, as a model streams tokens; 0 sends them in one burst); each
  agent_message_chunk's latency is its arrival at a viewer minus the time the node agent's
  gateway recorded the adapter's update (the message's `created_at`, which the outbox
  carries from the node), over every (viewer, chunk).
- ingest → viewer: N messages posted one a call to the ingest route with the node's own
  callback token, EVERY_MS apart, as the outbox sends them eagerly; latency is arrival
  minus the moment its POST began.

Both clocks are this machine's wall clock. A viewer missing a message, one out of order or
an error frame fails the run; no figure is asserted.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import datetime
from typing import Any

from bench.agent_workspace import BenchError
from bench.project_chat_support import ChatBench, chunk_frame, ingest, outbox_message
from tests.fakes.anthropic import Turn, text
from tests.support.chat_viewer import ChatViewer, frame_type

TURN_TIMEOUT_SECONDS = 120.0


async def agent_to_viewers(
    bench: ChatBench, chat: dict[str, Any], viewers: int, blocks: int, every_ms: float
) -> list[float]:
    """Milliseconds from the gateway's record of each chunk to its arrival, per viewer."""
    answer = [f"Part {n} of a long answer. " for n in range(blocks)]
    bench.model.script(Turn([text(part) for part in answer], pace_seconds=every_ms / 1000))
    async with _open(bench, chat, viewers) as opened:
        said = await asyncio.to_thread(
            bench.user.follow_up, chat["project_id"], chat["id"], "tell me a long story"
        )
        ends = [
            asyncio.wait_for(
                v.until(lambda m: frame_type(m) == "turn_ended" and m["seq"] > said["seq"]),
                TURN_TIMEOUT_SECONDS,
            )
            for v in opened
        ]
        await asyncio.gather(*ends)
    latencies = []
    for viewer in opened:
        chunks = [
            m
            for m in viewer.messages
            if m["seq"] > said["seq"] and frame_type(m) == "update:agent_message_chunk"
        ]
        said_text = "".join(m["frame"]["update"]["content"].get("text", "") for m in chunks)
        if said_text != "".join(answer):
            raise BenchError(f"a viewer saw the answer as {said_text[:200]!r}…")
        latencies += [
            (viewer.arrived_at[m["id"]] - datetime.fromisoformat(m["created_at"]).timestamp())
            * 1000
            for m in chunks
        ]
    return latencies


async def ingest_to_viewers(
    bench: ChatBench, chat: dict[str, Any], viewers: int, messages: int, every_ms: float
) -> list[float]:
    """Milliseconds from each POST's start to its message's arrival, per viewer."""
    tag = secrets.token_hex(4)
    ids = [f"bench-{tag}:{n}" for n in range(messages)]
    sent: dict[str, float] = {}
    async with _open(bench, chat, viewers) as opened, bench.ingest_client(chat) as client:
        readers = [
            asyncio.create_task(v.until(lambda m: m["id"] == ids[-1], TURN_TIMEOUT_SECONDS))
            for v in opened
        ]
        for seq, message_id in enumerate(ids, start=1):
            sent[message_id] = time.time()
            frame = chunk_frame(seq, f"{message_id} ")
            await ingest(client, chat, [outbox_message(chat, message_id, frame)])
            await asyncio.sleep(every_ms / 1000)  # the pace of the stream, not a wait
        await asyncio.gather(*readers)
    latencies = []
    for viewer in opened:
        got = [m["id"] for m in viewer.messages if m["id"] in sent]
        if got != ids:
            raise BenchError(f"a viewer got {len(got)} of {len(ids)} messages, or out of order")
        latencies += [(viewer.arrived_at[i] - sent[i]) * 1000 for i in ids]
    return latencies


@asynccontextmanager
async def _open(
    bench: ChatBench, chat: dict[str, Any], count: int
) -> AsyncIterator[list[ChatViewer]]:
    """`count` viewers of the chat from its newest message, each caught up before the
    measurement starts."""
    after = bench.user.chat(chat["project_id"], chat["id"])["last_seq"]
    async with AsyncExitStack() as stack:
        viewers = [
            await stack.enter_async_context(
                ChatViewer.connect(
                    bench.edge, bench.user.session, chat["project_id"], chat["id"], after
                )
            )
            for _ in range(count)
        ]
        await asyncio.gather(*(viewer.until_caught_up() for viewer in viewers))
        yield viewers
