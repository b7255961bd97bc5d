"""A project chat's viewer, as the web app opens it: the WebSocket on the app host
(`/api/projects/{pid}/ws?chat={cid}&after={seq}`, the session cookie), every frame checked.

    async with ChatViewer.connect(edge, session, project_id, chat_id) as viewer:
        message = await viewer.until(lambda m: m["role"] == "assistant")

Messages arrive in strictly increasing seq, each once; an error frame or a closed socket
fails at once with what the viewer had (wire/chat.py's ViewerFrame).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from tests.support.edge import Edge

FRAME_TIMEOUT_SECONDS = 120.0
SESSION_COOKIE = "sam_session"

Message = dict[str, Any]


class ViewerFailed(AssertionError):
    """The viewer got an error frame, a frame out of order, or the socket ended."""


class ChatViewer:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse, after: int) -> None:
        self.ws = ws
        self.last_seq = after
        self.messages: list[Message] = []  # in arrival order
        self.arrived_at: dict[str, float] = {}  # message id → time.time() on arrival (wall clock:
        # the agent and the edge stamp messages in other processes)
        self.chats: list[dict[str, Any]] = []  # the chat frames' ChatInfo
        self.caught_up = False

    @classmethod
    @asynccontextmanager
    async def connect(
        cls, edge: Edge, session: str, project_id: str, chat_id: str | None, after: int = 0
    ) -> AsyncIterator[ChatViewer]:
        app = edge.host("app")
        query = f"?chat={chat_id}&after={after}" if chat_id else ""
        headers = {"host": app, "origin": f"http://{app}", "cookie": f"{SESSION_COOKIE}={session}"}
        async with aiohttp.ClientSession() as http:
            url = f"ws://127.0.0.1:{edge.port}/api/projects/{project_id}/ws{query}"
            async with http.ws_connect(url, headers=headers, max_msg_size=0) as ws:
                yield cls(ws, after)

    async def next_frame(self, timeout: float = FRAME_TIMEOUT_SECONDS) -> dict[str, Any]:
        try:
            received = await asyncio.wait_for(self.ws.receive(), timeout)
        except TimeoutError:
            raise ViewerFailed(
                f"no frame in {timeout}s; the last messages: {self.messages[-8:]}"
            ) from None
        at = time.time()
        if received.type is not aiohttp.WSMsgType.TEXT:
            raise ViewerFailed(f"the viewer socket ended: {received.type.name} {received.data}")
        frame = json.loads(received.data)
        kind = frame.get("type")
        if kind == "error":
            raise ViewerFailed(f"error frame: {frame}")
        if kind == "message":
            message = frame["message"]
            if message["seq"] <= self.last_seq:
                raise ViewerFailed(f"seq {message['seq']} after {self.last_seq}: {message}")
            self.last_seq = message["seq"]
            self.messages.append(message)
            self.arrived_at[message["id"]] = at
        elif kind == "chat":
            self.chats.append(frame["chat"])
        elif kind == "caught_up":
            self.caught_up = True
        return frame

    async def until(
        self, wanted: Callable[[Message], bool], timeout: float = FRAME_TIMEOUT_SECONDS
    ) -> Message:
        """Read on until a message that `wanted` accepts (one already received counts)."""
        for message in self.messages:
            if wanted(message):
                return message
        while True:
            frame = await self.next_frame(timeout)
            if frame["type"] == "message" and wanted(frame["message"]):
                return frame["message"]

    async def until_caught_up(self) -> None:
        while not self.caught_up:
            await self.next_frame()


def agent_text(messages: list[Message]) -> str:
    """The agent's answer as the chat shows it: its text chunks, in order."""
    return "".join(
        m["frame"]["update"]["content"].get("text", "")
        for m in messages
        if m["role"] == "assistant" and m["frame"].get("type") == "update"
    )


def frame_type(message: Message) -> str:
    """`update:<sessionUpdate>` for an agent update, else the frame's type."""
    frame = message["frame"]
    if frame.get("type") == "update":
        return f"update:{frame['update'].get('sessionUpdate')}"
    return str(frame.get("type"))
