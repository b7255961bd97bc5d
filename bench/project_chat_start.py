"""Part 4 of bench_project_chat.py: New chat → the first streamed chunk, on a warm node,
vs doing the same by hand through the API in the same run.

- new chat: POST /api/projects/{pid}/chats {message} → the chat's viewer (through the edge)
  gets the first agent_message_chunk. The TaskRunner claims the warm node, creates the
  workspace, starts the agent session with the message and links it.
- by hand: POST /api/workspaces → GET it every POLL_SECONDS until running (what an API
  user does) → POST /api/terminal/token → POST …/agent-sessions {prompt} on ws-{id} →
  the session's viewer on ws-{id} gets the first agent_message_chunk.

Both use the real Claude Code adapter on the scripted model; each round makes one of each,
in alternating order, and deletes both workspaces (the node stays warm). A warm-up round
of each comes first and is not counted (it also warms the node). bench_tasks.py runs the
same rounds with a task's submit in New chat's place (`start_rounds(..., product=...)`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp

from bench.agent_workspace import BenchError
from bench.project_chat_support import ChatBench
from tests.e2e.chat_support import CHAT_READY_SECONDS, CHAT_STOPPED_SECONDS
from tests.fakes.anthropic import Turn, text
from tests.support.chat_viewer import ChatViewer, frame_type

POLL_SECONDS = 0.05
FRAME_TIMEOUT_SECONDS = 120.0


async def new_chat(bench: ChatBench, round_id: str) -> float:
    """Milliseconds from POST …/chats to the first chunk in the chat's viewer."""
    bench.model.script(Turn([text(f"Chat {round_id} answers.")]))
    began = time.perf_counter()
    chat = await asyncio.to_thread(bench.user.new_chat, bench.project_id, f"hello {round_id}")
    elapsed = await first_chunk_in_chat(bench, chat["id"], began)
    active = bench.user.wait_for_status(bench.project_id, chat["id"], "active", CHAT_READY_SECONDS)
    bench.user.delete_workspace(active["workspace_id"])
    bench.user.wait_for_status(bench.project_id, chat["id"], "stopped", CHAT_STOPPED_SECONDS)
    return elapsed


async def first_chunk_in_chat(bench: ChatBench, chat_id: str, began: float) -> float:
    """Milliseconds from `began` (perf_counter) to the chat's first agent_message_chunk in
    its viewer."""
    async with ChatViewer.connect(bench.edge, bench.user.session, bench.project_id, chat_id) as v:
        await v.until(lambda m: frame_type(m) == "update:agent_message_chunk")
        return (time.perf_counter() - began) * 1000


async def by_hand(bench: ChatBench, round_id: str) -> float:
    """Milliseconds from POST /api/workspaces to the first chunk in the session's viewer."""
    user, edge = bench.user, bench.edge
    bench.model.script(Turn([text(f"Session {round_id} answers.")]))
    began = time.perf_counter()
    body = {"repository": str(bench.repository), "provider": "local"}
    made = await asyncio.to_thread(user.ok, "POST", "/api/workspaces", 202, json=body)
    workspace_id = made["id"]
    deadline = began + CHAT_READY_SECONDS
    while (
        status := (await asyncio.to_thread(user.workspace, workspace_id))["status"]
    ) != "running":
        if status == "error" or time.perf_counter() > deadline:
            raise BenchError(f"workspace {workspace_id} is {status}")
        await asyncio.sleep(POLL_SECONDS)  # an API user's poll: part of what is measured
    grant = {"workspace_id": workspace_id}
    token = await asyncio.to_thread(user.ok, "POST", "/api/terminal/token", 200, json=grant)
    headers = {"host": f"ws-{workspace_id}.{edge.domain}", "origin": f"http://{edge.host('app')}"}
    base = f"http://127.0.0.1:{edge.port}/workspaces/{workspace_id}/agent-sessions"
    params = {"token": token["token"]}
    async with aiohttp.ClientSession(headers=headers) as http:
        prompt = {"prompt": f"hello {round_id}", "permission_mode": "bypass"}
        async with http.post(base, params=params, json=prompt) as answer:
            if answer.status != 201:
                raise BenchError(f"POST agent-sessions: {answer.status} {await answer.text()}")
            session = await answer.json()
        viewer = f"{base}/{session['id']}/ws".replace("http://", "ws://")
        async with http.ws_connect(viewer, params={**params, "after": "0"}) as ws:
            await _first_chunk(ws)
            elapsed = time.perf_counter() - began
    user.delete_workspace(workspace_id)
    return elapsed * 1000


async def _first_chunk(ws: aiohttp.ClientWebSocketResponse) -> None:
    while True:
        received = await asyncio.wait_for(ws.receive(), FRAME_TIMEOUT_SECONDS)
        if received.type is not aiohttp.WSMsgType.TEXT:
            raise BenchError(f"the session's viewer ended: {received.type.name}")
        frame = json.loads(received.data)
        if frame.get("type") in ("agent_error", "crashed", "stopped", "error"):
            raise BenchError(f"the session's viewer got {frame}")
        update = frame.get("update") or {}
        if update.get("sessionUpdate") == "agent_message_chunk":
            return


Start = Callable[[ChatBench, str], Awaitable[float]]


async def start_rounds(
    bench: ChatBench, rounds: int, warm_up: bool = True, product: Start = new_chat
) -> tuple[list[float], list[float]]:
    """(`product`, by hand) milliseconds, `rounds` each, after a warm-up round of each;
    `product` is New chat unless given (bench_tasks.py gives a task's submit)."""
    chats: list[float] = []
    hands: list[float] = []
    if warm_up:
        await product(bench, "warm-up-product")
        await by_hand(bench, "warm-up-hand")
    for n in range(rounds):
        order: list[Any] = [(product, chats), (by_hand, hands)]
        for measure, samples in order if n % 2 == 0 else reversed(order):
            samples.append(await measure(bench, f"r{n}"))
    return chats, hands
