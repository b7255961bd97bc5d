"""The viewer WebSocket of an agent session: the stored frames after `after` (a `gap`
first when some are no longer kept), then the live ones, each once; what viewers send
(`answer_permission`) is checked, rate-limited and handed to the session's broker."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web
from pydantic import ValidationError

from agent.persistence import Store
from agent.sessions.permissions import UnknownOption, UnknownRequest
from agent.sessions.session import VIEWER_QUEUE_FRAMES, AgentSession
from agent.terminals.session import TokenBucket
from wire import agent_session as w

REPLAY_BATCH_FRAMES = 500
MAX_CLIENT_FRAME_BYTES = 16 * 1024
TOO_SLOW = f"over {VIEWER_QUEUE_FRAMES} frames behind: reconnect with after=<last seq>".encode()


async def serve_viewer(
    ws: web.WebSocketResponse,
    store: Store,
    record: Mapping[str, Any],
    session: AgentSession | None,
    after: int,
    max_frames_per_second: int,
) -> None:
    """Send the stored frames after `after`, then the live ones of `session` (None: a
    stored session that does not run), until either side ends; answer its
    `answer_permission` frames."""
    queue = session.subscribe() if session is not None else None
    reader = asyncio.create_task(_read_frames(ws, session, max_frames_per_second))
    try:
        sent = after
        if after + 1 < record["first_seq"] and record["last_seq"] > after:
            gap = w.GapFrame(type="gap", after=after, first_seq=record["first_seq"])
            await ws.send_str(gap.model_dump_json())
        while batch := store.frames_after(record["id"], sent, REPLAY_BATCH_FRAMES):
            for seq, body in batch:
                await ws.send_str(body)
                sent = seq
        while queue is not None and not reader.done():
            getter = asyncio.create_task(queue.get())
            await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done():
                getter.cancel()
                break
            item = getter.result()
            if item is None:
                break
            seq, body = item
            if seq > sent:  # frames stored before the replay read them are sent once
                await ws.send_str(body)
                sent = seq
        if queue is not None and not reader.done():
            assert session is not None
            if session.state in (w.SessionState.STOPPED, w.SessionState.CRASHED):
                await ws.close(code=WSCloseCode.OK, message=b"the session has ended")
            else:  # dropped for being too far behind (AgentSession._append)
                await ws.close(code=WSCloseCode.TRY_AGAIN_LATER, message=TOO_SLOW)
        await reader
    except ConnectionResetError:
        pass  # the viewer went away mid-send: nothing more to do for it
    finally:
        reader.cancel()
        if queue is not None and session is not None:
            session.unsubscribe(queue)


async def _read_frames(ws: web.WebSocketResponse, session: AgentSession | None, rate: int) -> None:
    bucket = TokenBucket(rate, time.monotonic)
    async for message in ws:
        if not bucket.take():
            text = f"more than {rate} frames per second; this frame was ignored, send fewer"
            await _send_error(ws, "rate_limited", text)
            continue
        if message.type != WSMsgType.TEXT:
            await _send_error(ws, "bad_frame", "send JSON text frames")
            continue
        if len(message.data) > MAX_CLIENT_FRAME_BYTES:
            await _send_error(
                ws, "frame_too_large", f"frames are at most {MAX_CLIENT_FRAME_BYTES} bytes"
            )
            continue
        try:
            frame = w.CLIENT_FRAMES.validate_json(message.data)
        except ValidationError as exc:
            await _send_error(ws, "bad_frame", _first_problem(exc))
            continue
        try:
            if session is None:
                raise UnknownRequest(frame.request_id)
            session.answer(frame.request_id, frame.option_id)
        except UnknownRequest:
            text = f"no open permission request {frame.request_id!r} (answered already?)"
            await _send_error(ws, "unknown_request", text)
        except UnknownOption as exc:
            await _send_error(ws, "bad_frame", str(exc))


async def _send_error(ws: web.WebSocketResponse, code: str, message: str) -> None:
    frame = w.ErrorFrame(type="error", code=code, message=message)  # type: ignore[arg-type]
    with contextlib.suppress(ConnectionResetError):
        await ws.send_str(frame.model_dump_json())


def _first_problem(exc: ValidationError) -> str:
    problem = exc.errors(include_url=False)[0]
    where = ".".join(str(part) for part in problem["loc"]) or "frame"
    return f"{where}: {problem['msg']}"
