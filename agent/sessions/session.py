"""One agent session: an ACP adapter in a workspace's container, and its sequenced frames.

The session is the ACP *client* of its adapter (the SDK's `Client` protocol: updates,
permission requests, fs/read_text_file and fs/write_text_file) and drives it through the
SDK's ClientSideConnection: initialize, session/new, session/set_mode, session/prompt,
session/cancel. Everything that happens becomes a frame of wire/agent_session.py, stored
with the next `seq` (agent/persistence.py) and pushed to the live viewers' queues.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import acp
from acp.client.connection import ClientSideConnection
from acp.connection import StreamDirection, StreamEvent
from acp.schema import (
    ClientCapabilities,
    FileSystemCapabilities,
    Implementation,
    PermissionOption,
    ReadTextFileResponse,
    RequestPermissionResponse,
    TextContentBlock,
    ToolCallUpdate,
    WriteTextFileResponse,
)
from pydantic import BaseModel

from agent.config import AgentConfig
from agent.errors import AgentSessionBusy, AgentSessionEnded, AgentStartFailed
from agent.persistence import Store
from agent.sessions.adapter import AdapterProcess
from agent.sessions.container import Launcher
from agent.sessions.permissions import PermissionBroker, Settler
from wire import agent_session as w
from wire.version import VERSION

log = logging.getLogger(__name__)

# The adapter's modes (session/set_mode) for SAM's permission modes.
ADAPTER_MODES = {
    w.PermissionMode.ASK: "default",
    w.PermissionMode.ACCEPT_EDITS: "acceptEdits",
    w.PermissionMode.BYPASS: "bypassPermissions",
}
STARTUP_TIMEOUT_SECONDS = 60.0
MAX_READ_FILE_BYTES = 10 * 1024 * 1024
VIEWER_QUEUE_FRAMES = 4096
CLIENT_CAPABILITIES = ClientCapabilities(
    fs=FileSystemCapabilities(read_text_file=True, write_text_file=True), terminal=False
)
CRASH_HINT = "the agent stopped by itself: read the stderr tail, then start a new session"
START_HINT = "the agent did not start: read the stderr tail; check the container tools"

Viewer = asyncio.Queue[tuple[int, str] | None]  # None: the session has ended for viewers


class AgentSession:
    def __init__(
        self,
        record: Mapping[str, Any],
        store: Store,
        config: AgentConfig,
        launcher: Launcher,
        cwd: str,
    ) -> None:
        self.id: str = record["id"]
        self.workspace_id: str = record["workspace_id"]
        self.agent: str = record["agent"]
        self.permission_mode = w.PermissionMode(record["permission_mode"])
        self.acp_session_id: str | None = record["acp_session_id"]
        self.state = w.SessionState(record["state"])
        self._store = store
        self._config = config
        self._cwd = cwd
        self._process = AdapterProcess(launcher, tag=self.id)
        self._launcher = launcher
        self._broker = PermissionBroker(config.permission_timeout_seconds, self._resolved)
        self._conn: ClientSideConnection | None = None
        self._initialize: dict[str, Any] = {}
        self._turn: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._viewers: set[Viewer] = set()

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        """Start the adapter and its ACP session; raises AgentStartFailed (after a crashed
        frame) when it does not come up."""
        try:
            transport = await self._process.start(argv, env, self._problem)
        except OSError as exc:  # no `docker` CLI on this node, for one
            self._move(w.SessionState.CRASHED)
            raise AgentStartFailed(f"could not run the adapter: {exc}", detail="") from None
        self._conn = acp.connect_to_agent(self, transport, observers=[self._observe])
        self._watcher = asyncio.create_task(self._watch_exit())
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
                init = await self._conn.initialize(
                    protocol_version=acp.PROTOCOL_VERSION,
                    client_capabilities=CLIENT_CAPABILITIES,
                    client_info=Implementation(name="sam-agent", version=VERSION),
                )
                new = await self._conn.new_session(cwd=self._cwd, mcp_servers=[])
                await self._conn.set_session_mode(
                    session_id=new.session_id, mode_id=ADAPTER_MODES[self.permission_mode]
                )
        except (acp.RequestError, ConnectionError, TimeoutError) as exc:
            await self._process.stop()
            await self._end_crashed(START_HINT)
            tail = self._process.stderr.text()
            last = tail.strip().splitlines()[-1:] or ["(nothing on stderr)"]
            raise AgentStartFailed(
                f"the {self.agent} adapter did not start ({exc!r}); its stderr ends: {last[0]}",
                detail=tail,
            ) from None
        self.acp_session_id = new.session_id
        self._store.update_agent_session(self.id, acp_session_id=new.session_id)
        info = _json(init.agent_info) if init.agent_info else None
        self._append(
            w.StartedFrame,
            agent=self.agent,
            acp_session_id=new.session_id,
            permission_mode=self.permission_mode,
            initialize=self._initialize,
            agent_info=info,
        )
        self._move(w.SessionState.IDLE)

    def prompt(self, text: str) -> None:
        """Begin a turn; its end arrives as a turn_ended frame."""
        self._require_live()
        if self.state != w.SessionState.IDLE:
            raise AgentSessionBusy(
                f"session {self.id} is {self.state}: wait for the turn or cancel"
            )
        self._append(w.PromptFrame, text=text)
        self._move(w.SessionState.PROMPTING)
        self._turn = asyncio.create_task(self._run_turn(text))

    async def cancel(self) -> None:
        """session/cancel the running turn; open permission requests answer `cancelled`."""
        self._require_live()
        if self.state != w.SessionState.PROMPTING:
            return
        self._broker.cancel_all("cancel")
        assert self._conn is not None and self.acp_session_id is not None
        with contextlib.suppress(ConnectionError):
            await self._conn.cancel(session_id=self.acp_session_id)

    async def stop(self, reason: str) -> None:
        """Stop the adapter on its ladder (close stdin -> SIGTERM -> SIGKILL)."""
        if self.state in (w.SessionState.STOPPED, w.SessionState.CRASHED):
            return
        self._broker.cancel_all("stop")
        await self._process.stop()
        await self._close_connection()
        self._append(w.StoppedFrame, reason=reason)
        self._move(w.SessionState.STOPPED)
        self._release_viewers()

    def answer(self, request_id: str, option_id: str) -> None:
        self._broker.answer(request_id, option_id)

    def subscribe(self) -> Viewer:
        queue: Viewer = asyncio.Queue(VIEWER_QUEUE_FRAMES)
        self._viewers.add(queue)
        return queue

    def unsubscribe(self, queue: Viewer) -> None:
        self._viewers.discard(queue)

    # --- ACP client: what the adapter asks of us ------------------------------------------

    async def session_update(self, session_id: str, update: BaseModel, **kwargs: Any) -> None:
        self._append(w.UpdateFrame, update=_json(update))

    async def request_permission(
        self,
        session_id: str,
        tool_call: ToolCallUpdate,
        options: list[PermissionOption],
        **kwargs: Any,
    ) -> RequestPermissionResponse:
        request_id = self._broker.open(options)
        self._append(
            w.PermissionRequestFrame,
            request_id=request_id,
            tool_call=_json(tool_call),
            options=[_json(option) for option in options],
        )
        return await self._broker.wait(request_id)

    async def read_text_file(
        self,
        session_id: str,
        path: str,
        line: int | None = None,
        limit: int | None = None,
        **kwargs: Any,
    ) -> ReadTextFileResponse:
        _require_absolute(path)
        argv = ["head", "-c", str(MAX_READ_FILE_BYTES + 1), "--", path]
        code, out, _ = await self._launcher.run(argv)
        if code != 0:
            raise acp.RequestError.resource_not_found(path)
        if len(out) > MAX_READ_FILE_BYTES:
            details = f"{path} is over {MAX_READ_FILE_BYTES} bytes"
            raise acp.RequestError.invalid_params({"details": details})
        lines = out.decode("utf-8", "replace").splitlines(keepends=True)
        first = max((line or 1) - 1, 0)
        chosen = lines[first : first + limit] if limit is not None else lines[first:]
        return ReadTextFileResponse(content="".join(chosen))

    async def write_text_file(
        self, session_id: str, path: str, content: str, **kwargs: Any
    ) -> WriteTextFileResponse:
        _require_absolute(path)
        argv = ["sh", "-c", 'cat > "$1"', "sam-write", path]
        code, _, err = await self._launcher.run(argv, stdin=content.encode())
        if code != 0:
            details = err.decode("utf-8", "replace")[-1000:]
            raise acp.RequestError.internal_error({"details": details})
        return WriteTextFileResponse()

    # --- inside -----------------------------------------------------------------------------

    async def _run_turn(self, text: str) -> None:
        assert self._conn is not None and self.acp_session_id is not None
        try:
            async with asyncio.timeout(self._config.prompt_timeout_seconds):
                response = await self._conn.prompt(
                    session_id=self.acp_session_id,
                    prompt=[TextContentBlock(type="text", text=text)],
                )
        except TimeoutError:
            message = f"no end of turn within {self._config.prompt_timeout_seconds:g} s"
            self._append(w.AgentErrorFrame, code="prompt_timeout", message=message)
            await self.cancel()
        except acp.RequestError as exc:
            self._append(w.AgentErrorFrame, code="prompt_failed", message=str(exc))
        except ConnectionError:
            return  # the adapter went away: the exit watcher reports it
        else:
            self._append(w.TurnEndedFrame, stop_reason=response.stop_reason)
        if self.state == w.SessionState.PROMPTING:
            self._move(w.SessionState.IDLE)

    async def _watch_exit(self) -> None:
        await self._process.wait()
        if not self._process.stopping:
            self._broker.cancel_all("stop")
            await self._close_connection()
            await self._end_crashed(CRASH_HINT)

    async def _end_crashed(self, hint: str) -> None:
        code = await self._process.wait()
        self._append(
            w.CrashedFrame, exit_code=code, stderr_tail=self._process.stderr.text(), hint=hint
        )
        self._move(w.SessionState.CRASHED)
        self._release_viewers()

    async def _close_connection(self) -> None:
        if self._turn is not None and not self._turn.done():
            self._turn.cancel()
        if self._conn is not None:
            await self._conn.close()

    def _observe(self, event: StreamEvent) -> None:
        message = event.message
        if event.direction == StreamDirection.OUTGOING and message.get("method") == "initialize":
            self._initialize = message.get("params") or {}

    def _problem(self, code: str, message: str) -> None:
        log.warning("agent_session.bad_message id=%s code=%s %s", self.id, code, message)
        self._append(w.AgentErrorFrame, code=code, message=message)

    def _resolved(self, request_id: str, option_id: str | None, by: Settler) -> None:
        outcome = "cancelled" if option_id is None else "selected"
        self._append(
            w.PermissionResolvedFrame,
            request_id=request_id,
            outcome=outcome,
            option_id=option_id,
            by=by,
        )

    def _append(self, frame: type[BaseModel], **fields: Any) -> None:
        """Store the next frame and hand it to the live viewers."""
        build = lambda seq: frame(type=_type(frame), seq=seq, **fields).model_dump_json()  # noqa: E731
        seq, body = self._store.append_frame(self.id, build, self._config.session_log_bytes)
        for queue in list(self._viewers):
            try:
                queue.put_nowait((seq, body))
            except asyncio.QueueFull:  # a viewer this far behind reconnects with after=N
                self._viewers.discard(queue)
                _end_viewer(queue)

    def _move(self, state: w.SessionState) -> None:
        self.state = state
        self._store.update_agent_session(self.id, state=state)

    def _require_live(self) -> None:
        if self.state in (w.SessionState.STOPPED, w.SessionState.CRASHED, w.SessionState.STARTING):
            raise AgentSessionEnded(f"session {self.id} is {self.state}: start a new session")

    def _release_viewers(self) -> None:
        for queue in list(self._viewers):
            _end_viewer(queue)
        self._viewers.clear()


def _end_viewer(queue: Viewer) -> None:
    if queue.full():  # make room for the end marker: the viewer stops there anyway
        queue.get_nowait()
    queue.put_nowait(None)


def _type(frame: type[BaseModel]) -> str:
    return frame.model_fields["type"].annotation.__args__[0]  # type: ignore[union-attr]


def _json(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


def _require_absolute(path: str) -> None:
    if not path.startswith("/"):
        raise acp.RequestError.invalid_params({"details": f"{path!r} is not an absolute path"})
