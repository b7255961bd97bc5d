"""A main module for the harness's own check of hibernating WebSockets: the Worker sends
`/rooms/{name}?user=U` to the ROOM object, which accepts the socket with
`ctx.acceptWebSocket` (tags `viewer` and `user:U`, the user in the attachment) and answers
on it from its handlers: `who` → what this socket is, `say:TEXT` → to every viewer,
`to:USER:TEXT` → to that user's sockets only, `leave` → closed by the object. A close
or a dropped connection is told to the others. Each instance counts itself, so a test
sees a fresh one after an eviction."""

import itertools
import json
from urllib.parse import parse_qs, urlparse

from js import WebSocketPair
from pyodide.ffi import to_js
from workers import DurableObject, Response, WorkerEntrypoint

_instances = itertools.count(1)
BIG_ATTACHMENT = "x" * 4096  # over workerd's 2,048 serialized bytes


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        name = urlparse(request.url).path.rsplit("/", 1)[-1]
        return await self.env.ROOM.getByName(name).fetch(request)


class SocketRoom(DurableObject):
    def __init__(self, ctx, env):
        super().__init__(ctx, env)
        self.instance = next(_instances)

    async def fetch(self, request):
        if (request.headers.get("upgrade") or "").lower() != "websocket":
            return Response("a room is joined with a WebSocket", status=426)
        user = parse_qs(urlparse(request.url).query).get("user", ["anonymous"])[0]
        client, server = WebSocketPair.new().object_values()
        self.ctx.acceptWebSocket(server, to_js(["viewer", f"user:{user}"]))
        server.serializeAttachment(json.dumps({"user": user}))
        return Response(None, status=101, web_socket=client)

    async def webSocketMessage(self, ws, message):
        if message == "who":
            ws.send(
                json.dumps(
                    {
                        "attachment": json.loads(ws.deserializeAttachment()),
                        "tags": list(self.ctx.getTags(ws)),
                        "viewers": len(self.ctx.getWebSockets("viewer")),
                        "instance": self.instance,
                    }
                )
            )
        elif message.startswith("say:"):
            self._tell("viewer", f"{self._user(ws)}: {message.removeprefix('say:')}")
        elif message == "leave":
            ws.close(4001, "asked to leave")
        elif message.startswith("to:"):
            _, user, text = message.split(":", 2)
            self._tell(f"user:{user}", f"{self._user(ws)} (only to {user}): {text}")

    async def webSocketClose(self, ws, code, reason, was_clean):
        self._tell("viewer", f"left: {self._user(ws)} {code} {reason} clean={was_clean}")

    async def webSocketError(self, ws, error):
        self._tell("viewer", f"dropped: {self._user(ws)} ({error.message})")

    async def instances(self):
        return self.instance

    async def refusals(self):
        """What acceptWebSocket and serializeAttachment refuse, as workerd does."""
        errors = {}
        for case, attempt in {
            "python_list_tags": lambda ws: self.ctx.acceptWebSocket(ws, ["viewer"]),
            "eleven_tags": lambda ws: self.ctx.acceptWebSocket(
                ws, to_js([f"t{i}" for i in range(11)])
            ),
            "python_dict_attachment": lambda ws: ws.serializeAttachment({"user": "a"}),
            "oversized_attachment": lambda ws: ws.serializeAttachment(BIG_ATTACHMENT),
            "get_tags_of_a_plain_socket": lambda ws: self.ctx.getTags(ws),
        }.items():
            _, server = WebSocketPair.new().object_values()
            try:
                attempt(server)
            except Exception as error:  # the error is the answer
                errors[case] = str(error)
        return errors

    def _user(self, ws):
        return json.loads(ws.deserializeAttachment())["user"]

    def _tell(self, tag, text):
        for socket in self.ctx.getWebSockets(tag):
            socket.send(text)
