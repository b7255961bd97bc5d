"""A scripted Anthropic Messages API on loopback, for the real Claude Code to talk to.

    model = ScriptedModel([
        Turn([text("Reading it."), tool_use("Read", {"file_path": "/w/a.txt"})]),
        Turn([text("Done.")]),
    ]).start()
    ... ANTHROPIC_BASE_URL=model.url ...
    model.main_requests[0]["tools"]

`POST /v1/messages` streams SSE exactly as Anthropic sends it (message_start, then per
content block content_block_start / content_block_delta / content_block_stop, then
message_delta with stop_reason and usage, message_stop); without `"stream": true` it
answers the whole message as JSON. `POST /v1/messages/count_tokens` answers a count;
`GET /v1/models` lists MODEL. `GET|HEAD /api/hello`, Claude Code's connectivity check
before it starts, answers without a key and is not recorded.

Keys: with `keys` given, every request must carry one of them as Anthropic reads it
(`x-api-key`, or for a Claude Code OAuth token `Authorization: Bearer` with the OAuth
beta header), else it is answered 401 with Anthropic's error body. The key each request
carried is recorded in `seen_keys` (in order), so a test can tell which key reached it,
and each request's headers in `seen_headers`.

`serve_socket(sock)` answers on a listening socket made elsewhere as well (one bound in a
container's network namespace, so that an adapter there reaches the model on its own
loopback).

Each request of the agent's main loop takes the next Turn of the script (its body in
`main_requests`, the time.perf_counter() it arrived in `main_request_times`). Claude Code
also makes side calls (a session title, a suggestion of the user's next prompt after each
turn, an auto-mode classifier): `is_side_call` recognises them, and they are answered with
SIDE_CALL_TEXT without consuming the script. Every request body is recorded in `requests`.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

MODEL = "claude-sonnet-4-5"
SIDE_CALL_TEXT = "ok"
EXHAUSTED_TEXT = "The script has no more turns."
STALL_SECONDS = 60.0
SUGGESTION_MARKER = "[SUGGESTION MODE:"
OAUTH_BETA = "oauth-2025-04-20"
HELLO_PATH = "/api/hello"


@dataclass(frozen=True)
class Block:
    kind: str  # "text", "thinking" or "tool_use"
    text: str = ""
    name: str = ""
    input: dict[str, Any] = field(default_factory=dict)


def text(value: str) -> Block:
    return Block("text", text=value)


def thinking(value: str) -> Block:
    return Block("thinking", text=value)


def tool_use(name: str, input: dict[str, Any]) -> Block:
    return Block("tool_use", name=name, input=input)


@dataclass(frozen=True)
class Turn:
    """One answer of the model. `stall`: after the first text delta the stream stops
    (the connection stays open) until the client goes away or STALL_SECONDS pass.
    `pace_seconds`: a pause after each delta, as a model streams tokens (0: all at once)."""

    blocks: list[Block]
    stall: bool = False
    pace_seconds: float = 0.0

    @property
    def stop_reason(self) -> str:
        return "tool_use" if any(b.kind == "tool_use" for b in self.blocks) else "end_turn"


def is_side_call(body: dict[str, Any]) -> bool:
    """A request that is not the agent's main loop. Recorded from claude-agent-acp 0.101.0:
    its main loop offers the tools in every request; the session-title call and other side
    calls offer none; the prompt suggestion that runs after each turn offers them all but
    asks in a last user message that begins with SUGGESTION_MARKER."""
    if not body.get("tools"):
        return True
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content")
    texts = (
        [content]
        if isinstance(content, str)
        else [block.get("text", "") for block in content or [] if isinstance(block, dict)]
    )
    return any(text.startswith(SUGGESTION_MARKER) for text in texts)


class ScriptedModel(LoopbackServer):
    name = "anthropic"

    def __init__(
        self,
        turns: list[Turn] | None = None,
        host: str = "127.0.0.1",
        keys: set[str] | None = None,
    ) -> None:
        super().__init__()
        self.host = host
        self.keys = keys
        self.seen_keys: list[str | None] = []
        self.seen_headers: list[dict[str, str]] = []
        self.requests: list[dict[str, Any]] = []
        self.main_requests: list[dict[str, Any]] = []
        self.main_request_times: list[float] = []
        self.streams_open = 0
        self._turns = list(turns or [])
        self._lock = threading.Lock()
        self._ids = itertools.count(1)

    def script(self, *turns: Turn) -> None:
        with self._lock:
            self._turns.extend(turns)

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._turns)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/v1/messages", self.messages)
        app.router.add_post("/v1/messages/count_tokens", self.count_tokens)
        app.router.add_get("/v1/models", self.models)
        app.router.add_get(HELLO_PATH, self.hello)  # HEAD too

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path == HELLO_PATH:
            return await handler(request)
        key = presented_key(request)
        self.seen_keys.append(key)
        self.seen_headers.append({k.lower(): v for k, v in request.headers.items()})
        if self.keys is not None and key not in self.keys:
            error = {"type": "authentication_error", "message": "invalid x-api-key"}
            return web.json_response({"type": "error", "error": error}, status=401)
        return await handler(request)

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024, middlewares=[self._authenticate])
        self.routes(app)
        # A client that hangs up mid-stream ends the handler (a stalled turn's too).
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, 0).start()
        self.port = self._runner.addresses[0][1]

    async def hello(self, request: web.Request) -> web.Response:
        return web.json_response({"message": "hello"})

    async def models(self, request: web.Request) -> web.Response:
        model = {
            "type": "model",
            "id": MODEL,
            "display_name": "Claude Sonnet 4.5",
            "created_at": "2025-09-29T00:00:00Z",
        }
        return web.json_response(
            {"data": [model], "has_more": False, "first_id": MODEL, "last_id": MODEL}
        )

    async def count_tokens(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.requests.append({"path": request.path, "query": request.query_string, **body})
        return web.json_response({"input_tokens": _input_tokens(body)})

    async def messages(self, request: web.Request) -> web.StreamResponse:
        arrived = time.perf_counter()
        body = await request.json()
        with self._lock:
            self.requests.append({"path": request.path, "query": request.query_string, **body})
            if is_side_call(body):
                turn = Turn([text(SIDE_CALL_TEXT)])
            else:
                self.main_requests.append(body)
                self.main_request_times.append(arrived)
                turn = self._turns.pop(0) if self._turns else Turn([text(EXHAUSTED_TEXT)])
        message_id = f"msg_scripted_{next(self._ids):04d}"
        if not body.get("stream"):
            return web.json_response(self._whole(message_id, body, turn))
        return await self._stream(request, message_id, body, turn)

    def _whole(self, message_id: str, body: dict[str, Any], turn: Turn) -> dict[str, Any]:
        content = [self._content(block, index) for index, block in enumerate(turn.blocks)]
        return {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": body.get("model", MODEL),
            "content": content,
            "stop_reason": turn.stop_reason,
            "stop_sequence": None,
            "usage": {"input_tokens": _input_tokens(body), "output_tokens": _output_tokens(turn)},
        }

    def _content(self, block: Block, index: int) -> dict[str, Any]:
        if block.kind == "text":
            return {"type": "text", "text": block.text}
        if block.kind == "thinking":
            return {"type": "thinking", "thinking": block.text, "signature": "c2NyaXB0ZWQ="}
        return {
            "type": "tool_use",
            "id": self._tool_id(index),
            "name": block.name,
            "input": block.input,
        }

    def _tool_id(self, index: int) -> str:
        return f"toolu_scripted_{len(self.main_requests):03d}_{index}"

    async def _stream(
        self, request: web.Request, message_id: str, body: dict[str, Any], turn: Turn
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        self.streams_open += 1
        try:
            await self._events(response, message_id, body, turn)
        except ConnectionResetError:
            pass  # the client went away mid-stream (a cancelled turn)
        finally:
            self.streams_open -= 1
        return response

    async def _events(
        self, response: web.StreamResponse, message_id: str, body: dict[str, Any], turn: Turn
    ) -> None:
        async def send(event: str, data: dict[str, Any]) -> None:
            await response.write(f"event: {event}\ndata: {json.dumps(data)}\n\n".encode())

        start = self._whole(message_id, body, turn) | {"content": [], "stop_reason": None}
        start["usage"] = {"input_tokens": _input_tokens(body), "output_tokens": 1}
        await send("message_start", {"type": "message_start", "message": start})
        await send("ping", {"type": "ping"})
        for index, block in enumerate(turn.blocks):
            opening = self._content(block, index)
            if block.kind == "text":
                opening["text"] = ""
            elif block.kind == "thinking":
                opening |= {"thinking": "", "signature": ""}
            else:
                opening["input"] = {}
            await send(
                "content_block_start",
                {"type": "content_block_start", "index": index, "content_block": opening},
            )
            for delta in _deltas(block):
                await send(
                    "content_block_delta",
                    {"type": "content_block_delta", "index": index, "delta": delta},
                )
                if turn.stall:
                    await asyncio.sleep(STALL_SECONDS)
                elif turn.pace_seconds:
                    await asyncio.sleep(turn.pace_seconds)
            await send("content_block_stop", {"type": "content_block_stop", "index": index})
        await send(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": turn.stop_reason, "stop_sequence": None},
                "usage": {"output_tokens": _output_tokens(turn)},
            },
        )
        await send("message_stop", {"type": "message_stop"})
        await response.write_eof()


def presented_key(request: web.Request) -> str | None:
    """The key as the Anthropic API reads it: an OAuth token needs the beta header."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and OAUTH_BETA in request.headers.get("anthropic-beta", ""):
        return token
    return request.headers.get("x-api-key")


def _deltas(block: Block) -> list[dict[str, Any]]:
    """A block's content in a few pieces, as the real API splits it."""
    if block.kind == "tool_use":
        raw = json.dumps(block.input)
        half = len(raw) // 2
        return [
            {"type": "input_json_delta", "partial_json": part} for part in (raw[:half], raw[half:])
        ]
    half = len(block.text) // 2 or len(block.text)
    parts = [p for p in (block.text[:half], block.text[half:]) if p]
    if block.kind == "thinking":
        return [{"type": "thinking_delta", "thinking": p} for p in parts] + [
            {"type": "signature_delta", "signature": "c2NyaXB0ZWQ="}
        ]
    return [{"type": "text_delta", "text": p} for p in parts]


def _input_tokens(body: dict[str, Any]) -> int:
    return max(1, len(json.dumps(body.get("messages", []))) // 4)


def _output_tokens(turn: Turn) -> int:
    return max(1, sum(len(b.text) + len(json.dumps(b.input)) for b in turn.blocks) // 4)
