"""The agent's routes: the table of them, and their handlers.

Handlers raise typed AgentErrors and leave the answering of errors (and auth) to the
middlewares in agent/server.py; the route names below tell the auth middleware which
routes are public and which are WebSockets. The routes are written down in
docs/protocols/agent-api.md and docs/protocols/agent-sessions.md, their bodies declared in
wire/agent_api.py and wire/agent_session.py: every request is parsed, and every answer
built, through those models.
"""

import asyncio
import contextlib
import json
import logging
import weakref
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiohttp import WSCloseCode, web
from pydantic import BaseModel, ValidationError

from agent.config import AgentConfig
from agent.errors import BadRequest, InvalidWorkspaceSpec
from agent.grants import RevokedGrants
from agent.sessions.manager import AgentSessionManager
from agent.sessions.viewers import MAX_CLIENT_FRAME_BYTES
from agent.terminals.manager import TerminalManager
from agent.workspaces import git
from agent.workspaces.manager import WorkspaceManager
from wire.agent_api import (
    AgentWorkspace,
    BootLog,
    BootLogEntry,
    Deleted,
    GrantRevoked,
    Health,
    NewWorkspace,
    RevokeGrant,
    TerminalTabs,
    WorkspaceList,
)
from wire.agent_session import NewAgentSession, PermissionAnswer, Prompt
from wire.git import GitPush
from wire.version import VERSION

log = logging.getLogger("agent.routes")

WS_HEARTBEAT_SECONDS = 30.0
# The terminal protocol answers frames over max_frame_bytes with an error frame; aiohttp
# closes the socket (1009) only beyond this many times that, so a bad frame is not a drop.
WS_FRAME_CEILING_FACTOR = 4
BOOT_LOG_WS_MAX_MESSAGE_BYTES = 4 * 1024
# Viewers send only small frames (answer_permission); the manager answers a frame over
# MAX_CLIENT_FRAME_BYTES with an error frame, aiohttp drops the socket only beyond this.
AGENT_SESSION_WS_MAX_MESSAGE_BYTES = 4 * MAX_CLIENT_FRAME_BYTES

# Scratch repositories a push runs from (agent/workspaces/git.py), in the agent's own dir.
GIT_SCRATCH_DIRNAME = "git-scratch"

PUBLIC_ROUTES = frozenset({"health"})
WEBSOCKET_ROUTES = frozenset({"boot_log_ws", "terminal_ws", "agent_session_ws"})

CONFIG = web.AppKey("config", AgentConfig)
WORKSPACES = web.AppKey("workspaces", WorkspaceManager)
TERMINALS = web.AppKey("terminals", TerminalManager)
AGENT_SESSIONS = web.AppKey("agent_sessions", AgentSessionManager)
SOCKETS = web.AppKey("sockets", weakref.WeakSet)
GRANTS = web.AppKey("grants", RevokedGrants)
# The verified token's Principal (agent/auth.py), set by the auth middleware.
PRINCIPAL = "sam.principal"
# The request's WebSocket once upgraded: the error middleware closes it instead of answering.
WEBSOCKET = "sam.websocket"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Body = TypeVar("Body", bound=BaseModel)


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/health", health, name="health")
    router.add_post("/grants/revoke", revoke_grant, name="revoke_grant")
    router.add_post("/workspaces", create_workspace, name="create_workspace")
    router.add_get("/workspaces", list_workspaces, name="list_workspaces")
    router.add_get("/workspaces/{id}", get_workspace, name="get_workspace")
    router.add_delete("/workspaces/{id}", _lifecycle_action("delete", 200), name="delete")
    for action, status in (("stop", 200), ("restart", 202), ("rebuild", 202)):
        router.add_post(
            f"/workspaces/{{id}}/{action}", _lifecycle_action(action, status), name=action
        )
    router.add_get("/workspaces/{id}/boot-log", boot_log, name="boot_log")
    router.add_get("/workspaces/{id}/boot-log/ws", boot_log_ws, name="boot_log_ws")
    router.add_get("/workspaces/{id}/terminals", terminals, name="terminals")
    router.add_get("/workspaces/{id}/terminal/ws", terminal_ws, name="terminal_ws")
    router.add_get("/workspaces/{id}/git", git_state, name="git_state")
    router.add_post("/workspaces/{id}/git/push", git_push, name="git_push")
    sessions = "/workspaces/{id}/agent-sessions"
    router.add_post(sessions, create_agent_session, name="create_agent_session")
    router.add_get(sessions, list_agent_sessions, name="list_agent_sessions")
    router.add_get(sessions + "/{sid}", get_agent_session, name="get_agent_session")
    router.add_post(sessions + "/{sid}/prompt", prompt_agent_session, name="prompt")
    router.add_post(sessions + "/{sid}/cancel", cancel_agent_session, name="cancel")
    router.add_post(
        sessions + "/{sid}/permissions/{request_id}", answer_permission, name="answer_permission"
    )
    router.add_post(sessions + "/{sid}/stop", stop_agent_session, name="stop_agent_session")
    router.add_get(sessions + "/{sid}/ws", agent_session_ws, name="agent_session_ws")


async def json_body(request: web.Request) -> dict[str, Any]:
    raw = await request.read()  # over client_max_size raises HTTPRequestEntityTooLarge
    try:
        body = json.loads(raw) if raw else None
    except ValueError as exc:
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object")
    return body


def parse_body(model: type[Body], body: dict[str, Any]) -> Body:
    """`body` as `model`, or a BadRequest naming the first problem."""
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]
        field = ".".join(str(part) for part in problem["loc"]) or "body"
        raise BadRequest(f"{field}: {problem['msg']}") from None


def create_spec(body: dict[str, Any]) -> NewWorkspace:
    """The body's shape; the WorkspaceManager validates the values (id, repository, branch)."""
    try:
        return NewWorkspace.model_validate(body)
    except ValidationError as exc:
        problems = exc.errors(include_url=False)
        unknown = [str(p["loc"][0]) for p in problems if p["type"] == "extra_forbidden"]
        if unknown:
            accepted = sorted(NewWorkspace.model_fields)
            raise BadRequest(f"unknown fields {sorted(unknown)}; accepted: {accepted}") from None
        field = ".".join(str(part) for part in problems[0]["loc"])
        raise InvalidWorkspaceSpec(field, problems[0]["msg"]) from None


def reply(body: BaseModel, status: int = 200) -> web.Response:
    """`body` as JSON: the one way a route answers (so every answer is a declared shape)."""
    return web.json_response(text=body.model_dump_json(), status=status)


async def health(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    return reply(Health(node_id=config.node_id, agent_version=VERSION))


async def create_workspace(request: web.Request) -> web.Response:
    spec = create_spec(await json_body(request))
    workspace = await request.app[WORKSPACES].create(spec.model_dump())
    log.info("workspace.created id=%s repository=%s", spec.id, spec.repository)
    return reply(AgentWorkspace.model_validate(workspace), status=202)


async def list_workspaces(request: web.Request) -> web.Response:
    found = request.app[WORKSPACES].list()
    return reply(WorkspaceList.model_validate({"workspaces": found}))


async def get_workspace(request: web.Request) -> web.Response:
    workspace = request.app[WORKSPACES].get(request.match_info["id"])
    return reply(AgentWorkspace.model_validate(workspace))


def _lifecycle_action(action: str, status: int) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        workspace_id = request.match_info["id"]
        workspaces = request.app[WORKSPACES]
        workspaces.get(workspace_id)  # 404 before anything changes
        # Agents first: their stop ladder runs in the container, and their frames are
        # stored with the workspace (a deleted one takes them along).
        await request.app[AGENT_SESSIONS].close_workspace(workspace_id)
        result = await getattr(workspaces, action)(workspace_id)
        # Shells in a stopped, rebuilt or deleted workspace are gone or must go.
        await request.app[TERMINALS].close_workspace(workspace_id)
        log.info("workspace.%s id=%s", action, workspace_id)
        if action == "delete":
            return reply(Deleted(id=workspace_id), status=status)
        record = result if isinstance(result, dict) else workspaces.get(workspace_id)
        return reply(AgentWorkspace.model_validate(record), status=status)

    return handler


async def git_state(request: web.Request) -> web.Response:
    async with request.app[WORKSPACES].checkout(request.match_info["id"]) as checkout:
        return reply(await git.state(checkout))


async def git_push(request: web.Request) -> web.Response:
    body = parse_body(GitPush, await json_body(request))
    workspace_id = request.match_info["id"]
    scratch = request.app[CONFIG].state_dir / GIT_SCRATCH_DIRNAME
    async with request.app[WORKSPACES].checkout(workspace_id) as checkout:
        result = await git.push(checkout, body, scratch)
    log.info(
        "workspace.git_pushed id=%s branch=%s commit=%s pushed=%s",
        workspace_id,
        result.branch,
        result.commit,
        result.pushed,
    )
    return reply(result)


async def boot_log(request: web.Request) -> web.Response:
    log_ = request.app[WORKSPACES].boot_log(request.match_info["id"])
    return reply(BootLog.model_validate({"entries": log_.entries()}))


async def boot_log_ws(request: web.Request) -> web.WebSocketResponse:
    entries = request.app[WORKSPACES].boot_log(request.match_info["id"]).subscribe()
    ws = await _prepare(request, BOOT_LOG_WS_MAX_MESSAGE_BYTES)

    async def send_entries() -> None:
        async for entry in entries:
            await ws.send_str(BootLogEntry.model_validate(entry).model_dump_json())

    sender = asyncio.create_task(send_entries())
    # Reading is what notices the viewer leaving; viewers send nothing we act on.
    reader = asyncio.create_task(_drain(ws))
    done, _ = await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
    for task in (sender, reader):
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionResetError):
            await task
    if sender in done and sender.exception() is None:
        await ws.close(code=WSCloseCode.OK, message=b"provisioning ended")
    return ws


async def _drain(ws: web.WebSocketResponse) -> None:
    async for _message in ws:
        pass


async def terminals(request: web.Request) -> web.Response:
    workspace_id = request.match_info["id"]
    request.app[WORKSPACES].get(workspace_id)
    return reply(TerminalTabs.model_validate({"tabs": request.app[TERMINALS].tabs(workspace_id)}))


async def terminal_ws(request: web.Request) -> web.WebSocketResponse:
    workspace_id = request.match_info["id"]
    request.app[WORKSPACES].get(workspace_id)
    ceiling = request.app[CONFIG].max_frame_bytes * WS_FRAME_CEILING_FACTOR
    ws = await _prepare(request, ceiling)
    await request.app[TERMINALS].handle(ws, workspace_id)
    return ws


async def _prepare(request: web.Request, max_message_bytes: int) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=WS_HEARTBEAT_SECONDS, max_msg_size=max_message_bytes)
    request[WEBSOCKET] = ws
    await ws.prepare(request)
    request.app[SOCKETS].add(ws)
    request.app[GRANTS].opened(request[PRINCIPAL].claims.get("grant"), ws)
    return ws


async def revoke_grant(request: web.Request) -> web.Response:
    body = parse_body(RevokeGrant, await json_body(request))
    return reply(GrantRevoked(closed=await request.app[GRANTS].revoke(body.grant)))


async def create_agent_session(request: web.Request) -> web.Response:
    spec = parse_body(NewAgentSession, await json_body(request))
    info, created = await request.app[AGENT_SESSIONS].create(request.match_info["id"], spec)
    return reply(info, status=201 if created else 200)


async def list_agent_sessions(request: web.Request) -> web.Response:
    return reply(request.app[AGENT_SESSIONS].list(request.match_info["id"]))


async def get_agent_session(request: web.Request) -> web.Response:
    ids = request.match_info["id"], request.match_info["sid"]
    return reply(request.app[AGENT_SESSIONS].info(*ids))


async def prompt_agent_session(request: web.Request) -> web.Response:
    body = parse_body(Prompt, await json_body(request))
    ids = request.match_info["id"], request.match_info["sid"]
    taken = request.app[AGENT_SESSIONS].live(*ids).prompt(body.text, body.id)
    return reply(request.app[AGENT_SESSIONS].info(*ids), status=202 if taken else 200)


async def answer_permission(request: web.Request) -> web.Response:
    body = parse_body(PermissionAnswer, await json_body(request))
    ids = request.match_info["id"], request.match_info["sid"]
    request.app[AGENT_SESSIONS].answer_permission(
        *ids, request.match_info["request_id"], body.option_id
    )
    return reply(request.app[AGENT_SESSIONS].info(*ids))


async def cancel_agent_session(request: web.Request) -> web.Response:
    ids = request.match_info["id"], request.match_info["sid"]
    await request.app[AGENT_SESSIONS].live(*ids).cancel()
    return reply(request.app[AGENT_SESSIONS].info(*ids))


async def stop_agent_session(request: web.Request) -> web.Response:
    ids = request.match_info["id"], request.match_info["sid"]
    return reply(await request.app[AGENT_SESSIONS].stop(*ids))


async def agent_session_ws(request: web.Request) -> web.WebSocketResponse:
    ids = request.match_info["id"], request.match_info["sid"]
    request.app[AGENT_SESSIONS].info(*ids)  # 404 before the upgrade
    raw_after = request.query.get("after", "0")
    if not raw_after.isdigit():
        raise BadRequest(f"after: {raw_after!r} is not a sequence number (0, 1, 2, …)")
    ws = await _prepare(request, AGENT_SESSION_WS_MAX_MESSAGE_BYTES)
    await request.app[AGENT_SESSIONS].view(ws, *ids, after=int(raw_after))
    return ws
