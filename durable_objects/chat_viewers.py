"""ProjectData's viewers: hibernating WebSockets, one tag per chat or one for the project.

A chat viewer (`chat:{id}`) gets the messages it missed (seq > after), a `caught_up`
frame, then every new message of that chat and its `chat` events; a project viewer
(`project`) gets `chat` and `chat_deleted` events for every chat. What a socket needs is
in its tags, which live on the socket, never in the object instance: a viewer stays
connected, and served, across the object's eviction. The replay and every broadcast run
with no await inside, so a live message can neither overtake the replay nor be sent twice.
"""

import json
from typing import Any

from durable_objects.chat_log import ChatLog
from wire.chat import MAX_PAGE_MESSAGES
from worker.platform import Response, WebSocketPair, accept_web_socket

PROJECT_TAG = "project"
OPEN = 1  # WebSocket.readyState
# A viewer further behind than this pages the history over HTTP first (GET …/messages).
MAX_REPLAY_MESSAGES = MAX_PAGE_MESSAGES
# Close codes (application range).
CLOSE_TOO_FAR_BEHIND = 4409
CLOSE_CHAT_DELETED = 4404


def chat_tag(chat_id: str) -> str:
    return f"chat:{chat_id}"


def _text(frame: dict[str, Any]) -> str:
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False)


def _send(sockets: list[Any], text: str) -> None:
    for ws in sockets:
        if ws.readyState == OPEN:  # one closing meanwhile is skipped, not an error
            ws.send(text)


def error_frame(code: str, message: str) -> str:
    return _text({"type": "error", "code": code, "message": message})


def accept(ctx: Any, log: ChatLog, chat_id: str | None, after: int) -> Response:
    """A viewer's socket, accepted and caught up; the 101 that hands its other end over."""
    client, server = WebSocketPair.new().object_values()
    if chat_id is None:
        accept_web_socket(ctx, server, [PROJECT_TAG])
        server.send(_text({"type": "caught_up", "last_seq": log.last_seq()}))
        return Response(None, 101, web_socket=client)
    accept_web_socket(ctx, server, [chat_tag(chat_id)])
    missed = log.count_after(chat_id, after)
    if missed > MAX_REPLAY_MESSAGES:
        server.send(
            error_frame(
                "too_far_behind",
                f"{missed} messages came after seq {after}, more than a viewer is sent "
                f"({MAX_REPLAY_MESSAGES}): read them with GET …/chats/{chat_id}/messages"
                f"?after={after}, then reconnect with after= the last seq you read.",
            )
        )
        server.close(CLOSE_TOO_FAR_BEHIND, "page the history, then reconnect")
        return Response(None, 101, web_socket=client)
    for message in log.messages(chat_id, after, None, MAX_REPLAY_MESSAGES):
        server.send(_text({"type": "message", "message": message}))
    server.send(_text({"type": "caught_up", "last_seq": log.last_seq()}))
    return Response(None, 101, web_socket=client)


def message(ctx: Any, stored: dict) -> None:
    _send(
        ctx.getWebSockets(chat_tag(stored["chat_id"])),
        _text({"type": "message", "message": stored}),
    )


def chat(ctx: Any, info: dict) -> None:
    text = _text({"type": "chat", "chat": info})
    _send(ctx.getWebSockets(PROJECT_TAG) + ctx.getWebSockets(chat_tag(info["id"])), text)


def chat_deleted(ctx: Any, chat_id: str) -> None:
    _send(ctx.getWebSockets(PROJECT_TAG), _text({"type": "chat_deleted", "chat_id": chat_id}))
    text = _text({"type": "chat_deleted", "chat_id": chat_id})
    for ws in ctx.getWebSockets(chat_tag(chat_id)):
        if ws.readyState == OPEN:
            ws.send(text)
            ws.close(CLOSE_CHAT_DELETED, "the chat was deleted")
