"""Loopback servers the Worker reaches from the real-Pyodide harness, speaking the wire
formats of what they stand for (no agent process or VM is started):

- `NodeLauncherDouble`: the `LOCAL_NODES` service binding behind the `local` provider
  (devtools/local_nodes.py's wire format, worker/nodes/providers/local.py): it records each
  node's one-time bootstrap token and names the agent double's host and port.
- `AgentDouble`: a node agent (docs/protocols/agent-api.md, wire/agent_api.py and
  wire/terminal.py, wire/agent_session.py): creates workspaces on request, answers the
  read-only routes the `ws-{id}` proxy forwards, a terminal WebSocket that answers `list`
  frames, agent sessions (create idempotent by id, prompts taken once by id, stop), and a
  session viewer WebSocket that answers each permission answer as an unknown request. It
  serves TLS as AGENT_HOST, as every agent the Worker reaches does (docs/edge-to-node.md):
  one agent stands in for every node.
"""

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.loopback import LoopbackServer
from wire.agent_api import (
    AgentWorkspace,
    BootLog,
    Deleted,
    ErrorBody,
    NewWorkspace,
    TerminalTabs,
)
from wire.agent_session import (
    AgentSessionInfo,
    AnswerPermissionFrame,
    ErrorFrame,
    NewAgentSession,
    Prompt,
    SessionState,
)
from wire.states import LifecycleState
from wire.terminal import ListFrame, SessionsFrame, parse_client_frame

AGENT_HOST = "agent.localhost"


class NodeLauncherDouble(LoopbackServer):
    name = "local-nodes"

    def __init__(self, agent_port: int) -> None:
        super().__init__()
        self.agent_port = agent_port
        self.bootstrap_tokens: dict[str, str] = {}  # node id → the token it was launched with
        self.nodes: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/nodes", self._launch)
        app.router.add_get("/nodes", self._list)
        app.router.add_delete("/nodes/{node_id}", self._stop)

    def run(self, node_id: str, user_id: str) -> None:
        """Have a node running, as if launched (a test adds one that D1 does not know)."""
        with self._lock:
            self.nodes[node_id] = {
                "node_id": node_id,
                "user_id": user_id,
                "agent_port": self.agent_port,
                "running": True,
                "pid": 0,
            }

    async def _launch(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bootstrap_tokens[body["node_id"]] = body["bootstrap_token"]
        self.run(body["node_id"], body["user_id"])
        launched = {
            "node_id": body["node_id"],
            "agent_host": AGENT_HOST,
            "agent_port": self.agent_port,
        }
        return web.json_response(launched, status=201)

    async def _list(self, _request: web.Request) -> web.Response:
        with self._lock:
            return web.json_response({"nodes": list(self.nodes.values())})

    async def _stop(self, request: web.Request) -> web.Response:
        with self._lock:
            self.nodes.pop(request.match_info["node_id"], None)
        return web.json_response({"node_id": request.match_info["node_id"]})


class AgentDouble(LoopbackServer):
    name = "agent"

    def __init__(self, tls: tuple[Path, Path]) -> None:
        super().__init__(tls)
        self.workspaces: dict[str, AgentWorkspace] = {}
        self.creates: list[str] = []  # the id of every workspace create, repeats too
        # (path, Authorization header, ?token=) of every read and WebSocket the edge forwarded.
        self.forwarded: list[tuple[str, str | None, str | None]] = []
        self.queries: list[dict[str, str]] = []  # the query of each, beside it
        self.bodies: list[bytes] = []  # the body of every POST the edge forwarded
        self.sessions: dict[str, AgentSessionInfo] = {}  # made, by id
        self.session_posts: list[str] = []  # the id of every session create, repeats too
        self.prompts: dict[str, list[str]] = {}  # session id → the ids of the prompts it took
        self.stopped: list[str] = []  # the sessions stopped, in order

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/workspaces", self._create)
        app.router.add_get("/workspaces/{id}", self._workspace)
        app.router.add_delete("/workspaces/{id}", self._delete)
        app.router.add_get("/workspaces/{id}/terminals", self._terminals)
        app.router.add_get("/workspaces/{id}/boot-log", self._boot_log)
        app.router.add_get("/workspaces/{id}/terminal/ws", self._terminal)
        app.router.add_post("/workspaces/{id}/agent-sessions", self._new_session)
        app.router.add_get("/workspaces/{id}/agent-sessions/{sid}/ws", self._viewer)
        app.router.add_post("/workspaces/{id}/agent-sessions/{sid}/prompt", self._prompt)
        app.router.add_post("/workspaces/{id}/agent-sessions/{sid}/stop", self._stop_session)

    def _record(self, request: web.Request) -> None:
        self.forwarded.append(
            (request.path, request.headers.get("authorization"), request.query.get("token"))
        )
        self.queries.append(dict(request.query))

    async def _create(self, request: web.Request) -> web.Response:
        wanted = NewWorkspace.model_validate(await request.json())
        self.creates.append(wanted.id)
        now = datetime.now(UTC).isoformat()
        workspace = AgentWorkspace(
            id=wanted.id,
            repository=wanted.repository,
            branch=wanted.branch,
            state=LifecycleState.CREATING,
            container_id=None,
            remote_user=None,
            remote_folder=None,
            remote_env=None,
            directory=None,
            error=None,
            created_at=now,
            updated_at=now,
            backend="host",
        )
        self.workspaces[wanted.id] = workspace
        return web.json_response(workspace.model_dump(mode="json"), status=202)

    async def _workspace(self, request: web.Request) -> web.Response:
        self._record(request)
        workspace = self.workspaces.get(request.match_info["id"])
        if workspace is None:
            return self._unknown(request.match_info["id"])
        return web.json_response(workspace.model_dump(mode="json"))

    @staticmethod
    def _unknown(workspace_id: str) -> web.Response:
        unknown = ErrorBody(error="workspace_not_found", message=f"no workspace {workspace_id}")
        return web.json_response(unknown.model_dump(mode="json"), status=404)

    async def _delete(self, request: web.Request) -> web.Response:
        workspace_id = request.match_info["id"]
        if self.workspaces.pop(workspace_id, None) is None:
            return self._unknown(workspace_id)
        return web.json_response(Deleted(id=workspace_id).model_dump(mode="json"))

    async def _terminals(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response(TerminalTabs(tabs=[]).model_dump(mode="json"))

    async def _boot_log(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response(BootLog(entries=[]).model_dump(mode="json"))

    async def _terminal(self, request: web.Request) -> web.WebSocketResponse:
        self._record(request)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                break
            frame = parse_client_frame(message.data)
            if isinstance(frame, ListFrame):
                reply = SessionsFrame(request_id=frame.request_id, sessions=[])
                await socket.send_str(reply.model_dump_json())
        return socket

    async def _new_session(self, request: web.Request) -> web.Response:
        """Idempotent by the session id, as the agent is: the same id again is answered 200
        with the session already there (no second session)."""
        self._record(request)
        self.bodies.append(await request.read())
        wanted = NewAgentSession.model_validate_json(self.bodies[-1])
        session_id = wanted.id or "as-1"
        self.session_posts.append(session_id)
        if session_id in self.sessions:
            return web.json_response(text=self.sessions[session_id].model_dump_json(), status=200)
        info = AgentSessionInfo(
            id=session_id,
            workspace_id=request.match_info["id"],
            agent=wanted.agent,
            permission_mode=wanted.permission_mode,
            state=SessionState.IDLE,
            acp_session_id="acp-1",
            last_seq=0,
            created_at=datetime.now(UTC),
        )
        self.sessions[session_id] = info
        self.prompts[session_id] = [wanted.prompt_id] if wanted.prompt_id else []
        return web.json_response(text=info.model_dump_json(), status=201)

    async def _prompt(self, request: web.Request) -> web.Response:
        """A prompt id is taken once (200 for a repeat), as the agent takes it."""
        session_id = request.match_info["sid"]
        if session_id not in self.sessions:
            return self._no_session(session_id)
        prompt = Prompt.model_validate_json(await request.read())
        taken = self.prompts[session_id]
        if prompt.id is not None and prompt.id in taken:
            return web.json_response({"accepted": False}, status=200)
        taken.append(prompt.id or f"p{len(taken)}")
        return web.json_response({"accepted": True}, status=202)

    async def _stop_session(self, request: web.Request) -> web.Response:
        session_id = request.match_info["sid"]
        if session_id not in self.sessions:
            return self._no_session(session_id)
        self.stopped.append(session_id)
        return web.json_response(text=self.sessions[session_id].model_dump_json())

    @staticmethod
    def _no_session(session_id: str) -> web.Response:
        unknown = ErrorBody(error="agent_session_not_found", message=f"no session {session_id}")
        return web.json_response(unknown.model_dump(mode="json"), status=404)

    async def _viewer(self, request: web.Request) -> web.WebSocketResponse:
        self._record(request)
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        async for message in socket:
            if message.type is not WSMsgType.TEXT:
                break
            answer = AnswerPermissionFrame.model_validate_json(message.data)
            unknown = f"no open permission request {answer.request_id}"
            reply = ErrorFrame(type="error", code="unknown_request", message=unknown)
            await socket.send_str(reply.model_dump_json())
        return socket
