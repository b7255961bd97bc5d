"""One agent session: an ACP adapter in a workspace's container, and its sequenced frames.

The session is the ACP *client* of its adapter (the SDK's `Client` protocol: updates and
permission requests here, fs/* and terminal/* in client.py) and drives it through
the SDK's ClientSideConnection: initialize, session/new, session/set_mode, session/prompt,
session/cancel. Everything that happens becomes a frame of wire/agent_session.py, stored
with the next `seq` (agent/persistence.py) and pushed to the live viewers' queues.

An adapter that exits by itself is started again (restarts.py bounds how often): viewers
get `crashed`, `restarting`, then `resumed` once the adapter has reloaded the conversation
with session/load (or, when it cannot, begun a new ACP session: `context: lost`). A node
agent that restarted brings its sessions back the same way (`resume`). Every frame takes
the next seq of the one stored log, so restarts never reuse or skip one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import acp
from acp.client.connection import ClientSideConnection
from acp.connection import StreamDirection, StreamEvent
from acp.schema import (
    ClientCapabilities,
    FileSystemCapabilities,
    Implementation,
    PermissionOption,
    RequestPermissionResponse,
    TextContentBlock,
    ToolCallUpdate,
)
from pydantic import BaseModel

from agent.config import AgentConfig
from agent.errors import AgentSessionBusy, AgentSessionEnded, AgentStartFailed
from agent.persistence import Store
from agent.sessions.adapter import AdapterProcess
from agent.sessions.client import WorkspaceClient
from agent.sessions.container import Launcher
from agent.sessions.permissions import PermissionBroker, Settler
from agent.sessions.restarts import RestartBudget
from agent.sessions.terminals import AgentTerminals
from agent.terminals.manager import TerminalManager
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
VIEWER_QUEUE_FRAMES = 4096
# Prompts with an id that wait for the running turn (or restart); one more is refused (409).
MAX_QUEUED_PROMPTS = 16
CLIENT_CAPABILITIES = ClientCapabilities(
    fs=FileSystemCapabilities(read_text_file=True, write_text_file=True), terminal=True
)
RESTART_HINT = "the agent exited by itself; it is being restarted"
START_HINT = "the agent did not start: read the stderr tail; check the container tools"
ENDED = (w.SessionState.STOPPED, w.SessionState.CRASHED)

Viewer = asyncio.Queue[tuple[int, str] | None]  # None: the session has ended for viewers
Cause = Literal["crashed", "agent_restarted"]


class LaunchFailed(Exception):
    """The adapter did not come up; the message ends with its last stderr line."""


class AgentSession(WorkspaceClient):
    def __init__(
        self,
        record: Mapping[str, Any],
        store: Store,
        config: AgentConfig,
        launcher: Launcher,
        cwd: str,
        terminals: TerminalManager,
        restarts: RestartBudget | None = None,
        on_frame: Callable[[str], None] | None = None,
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
        self._restarts = restarts or RestartBudget(config)
        self._on_frame = on_frame  # told the session's id after each stored frame
        commands = AgentTerminals(
            terminals,
            self.workspace_id,
            self.id,
            launcher.command,
            config.terminal_ring_bytes,
            config.max_sessions,
        )
        super().__init__(launcher, commands)
        self._process = AdapterProcess(launcher, tag=self.id)
        self._broker = PermissionBroker(config.permission_timeout_seconds, self._resolved)
        self._conn: ClientSideConnection | None = None
        self._argv: Sequence[str] = ()
        self._env: Mapping[str, str] = {}
        self._initialize: dict[str, Any] = {}
        self._replaying = False  # session/load replays the conversation: not new frames
        self._turn: asyncio.Task[None] | None = None
        self._watcher: asyncio.Task[None] | None = None
        self._viewers: set[Viewer] = set()

    @property
    def viewer_count(self) -> int:
        return len(self._viewers)

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        """Start the adapter and its ACP session; raises AgentStartFailed (after a crashed
        frame) when it does not come up."""
        self._argv, self._env = argv, env
        try:
            info, session_id, _ = await self._launch(None)
        except LaunchFailed as exc:
            await self._end_crashed(START_HINT)
            raise AgentStartFailed(str(exc), detail=self._process.stderr.text()) from None
        if self.state in ENDED:  # stopped while it started: the new adapter goes too
            await self._process.stop()
            return
        self._adopt(session_id)
        self._append(
            w.StartedFrame,
            agent=self.agent,
            acp_session_id=session_id,
            permission_mode=self.permission_mode,
            initialize=self._initialize,
            agent_info=info,
        )
        self._move(w.SessionState.IDLE)

    def resume(self, argv: Sequence[str], env: Mapping[str, str]) -> None:
        """Bring back a session the node agent ran before it restarted: what is left of its
        adapter goes, a new one reloads the conversation (frames tell the outcome)."""
        self._argv, self._env = argv, env
        self._move(w.SessionState.RESTARTING)
        self._watcher = asyncio.create_task(self._restart("agent_restarted"))

    def prompt(self, text: str, prompt_id: str | None = None) -> bool:
        """Begin a turn; its end arrives as a turn_ended frame. With a `prompt_id`: False
        when that id was taken before (nothing happens), and while the session is busy
        the prompt waits for it (AgentSessionBusy once MAX_QUEUED_PROMPTS wait)."""
        if prompt_id is None:
            self._require_live()
            if self.state != w.SessionState.IDLE:
                raise AgentSessionBusy(
                    f"session {self.id} is {self.state}: wait for the turn or cancel"
                )
            self._begin(text, None)
            return True
        if self._store.prompt_seen(self.id, prompt_id):
            return False
        if self.state in ENDED:
            self._require_live()
        wait = self.state != w.SessionState.IDLE
        taken = self._store.take_prompt(self.id, prompt_id, text, wait, MAX_QUEUED_PROMPTS)
        if taken == "full":
            raise AgentSessionBusy(
                f"session {self.id} has {MAX_QUEUED_PROMPTS} prompts waiting already: "
                "deliver this one again after its turn ends"
            )
        if taken == "run":
            self._begin(text, prompt_id)
        return taken != "taken"

    def _begin(self, text: str, prompt_id: str | None) -> None:
        self._append(w.PromptFrame, text=text, prompt_id=prompt_id)
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
        if self.state in ENDED:
            return
        self._move(w.SessionState.STOPPED)  # first: a restart under way gives up
        await self._halt()
        self._append(w.StoppedFrame, reason=reason)
        self._release_viewers()

    async def suspend(self) -> None:
        """The node agent is shutting down: the adapter stops as in `stop`, but the
        session keeps its state, so that the agent resumes it when it starts again."""
        if self.state not in ENDED:
            await self._halt()
            self._release_viewers()

    async def _halt(self) -> None:
        if self._watcher is not None and self._watcher is not asyncio.current_task():
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
        self._broker.cancel_all("stop")
        await self._process.stop()
        await self._close_connection()
        await self._terminals.close()

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
        if not self._replaying:  # the viewers have those frames already
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

    # --- inside -----------------------------------------------------------------------------

    async def _launch(self, previous: str | None) -> tuple[dict[str, Any] | None, str, bool]:
        """A new adapter process with an ACP session: (agent_info, ACP session id, whether
        `previous` was loaded). Raises LaunchFailed."""
        process = self._process = AdapterProcess(self._launcher, tag=self.id)
        try:
            transport = await process.start(self._argv, self._env, self._problem)
        except OSError as exc:  # no `docker` CLI on this node, for one
            raise LaunchFailed(f"could not run the adapter: {exc}") from None
        conn = self._conn = acp.connect_to_agent(self, transport, observers=[self._observe])
        try:
            async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
                init = await conn.initialize(
                    protocol_version=acp.PROTOCOL_VERSION,
                    client_capabilities=CLIENT_CAPABILITIES,
                    client_info=Implementation(name="sam-agent", version=VERSION),
                )
                can_load = bool(init.agent_capabilities and init.agent_capabilities.load_session)
                loaded = previous is not None and can_load and await self._load(conn, previous)
                if loaded:
                    assert previous is not None
                    session_id = previous
                else:
                    session_id = (await conn.new_session(cwd=self._cwd, mcp_servers=[])).session_id
                await conn.set_session_mode(
                    session_id=session_id, mode_id=ADAPTER_MODES[self.permission_mode]
                )
        except (acp.RequestError, ConnectionError, TimeoutError) as exc:
            await process.stop()
            await conn.close()
            tail = process.stderr.text()
            last = tail.strip().splitlines()[-1:] or ["(nothing on stderr)"]
            raise LaunchFailed(
                f"the {self.agent} adapter did not start ({exc!r}); its stderr ends: {last[0]}"
            ) from None
        self._watcher = asyncio.create_task(self._watch_exit(process))
        info = _json(init.agent_info) if init.agent_info else None
        return info, session_id, loaded

    async def _load(self, conn: ClientSideConnection, session_id: str) -> bool:
        """session/load of the earlier ACP session; False when the adapter refuses it."""
        self._replaying = True
        try:
            await conn.load_session(cwd=self._cwd, session_id=session_id, mcp_servers=[])
        except acp.RequestError as exc:
            log.warning("agent_session.load_refused id=%s error=%s", self.id, exc)
            return False
        finally:
            self._replaying = False
        return True

    async def _watch_exit(self, process: AdapterProcess) -> None:
        code = await process.wait()
        if process.stopping or process is not self._process or self.state in ENDED:
            return
        self._broker.cancel_all("stop")
        await self._close_connection()
        await self._terminals.release_all()
        if self._crashed(code, process.stderr.text()):
            await self._restart("crashed")
        else:
            await self._terminals.close()

    def _crashed(self, code: int | None, tail: str) -> bool:
        """The crashed frame of an adapter that exited; whether a restart follows."""
        restarting = self._restarts.available()
        hint = RESTART_HINT if restarting else self._final_hint()
        self._append(
            w.CrashedFrame, exit_code=code, stderr_tail=tail, hint=hint, restarting=restarting
        )
        if not restarting:
            self._move(w.SessionState.CRASHED)
            self._release_viewers()
        return restarting

    def _final_hint(self) -> str:
        window = self._config.agent_restart_window_seconds
        return (
            f"the agent exited by itself and was restarted {self._restarts.limit} times within "
            f"{window:g} s: read the stderr tail, then start a new session"
        )

    async def _restart(self, cause: Cause) -> None:
        """Start the adapter again, within the restart budget, until one comes up."""
        await self._kill_leftovers()
        if not self._restarts.available():  # none allowed (SAM_AGENT_RESTARTS=0)
            await self._end_crashed(self._final_hint())
            return
        while True:
            attempt, delay = self._restarts.take()
            self._append(
                w.RestartingFrame,
                cause=cause,
                attempt=attempt,
                limit=self._restarts.limit,
                delay_seconds=delay,
            )
            self._move(w.SessionState.RESTARTING)
            await asyncio.sleep(delay)
            try:
                _, session_id, loaded = await self._launch(self.acp_session_id)
            except LaunchFailed as exc:
                log.warning("agent_session.restart_failed id=%s error=%s", self.id, exc)
                code = await self._process.wait()
                if self._crashed(code, self._process.stderr.text()):
                    continue
                await self._terminals.close()
                return
            self._adopt(session_id)
            context = "loaded" if loaded else "lost"
            self._append(w.ResumedFrame, acp_session_id=session_id, context=context)
            self._move(w.SessionState.IDLE)
            log.info("agent_session.resumed id=%s cause=%s context=%s", self.id, cause, context)
            return

    async def _kill_leftovers(self) -> None:
        """What the exited adapter (or the agent before its restart) left running."""
        try:
            await self._launcher.signal_tagged(self._process.tag_env, signal.SIGKILL)
        except (OSError, TimeoutError) as exc:
            log.warning("agent_session.leftovers id=%s error=%r", self.id, exc)

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

    async def _end_crashed(self, hint: str) -> None:
        """The last frame of a session whose adapter is not started again."""
        code = await self._process.wait()
        tail = self._process.stderr.text()
        await self._terminals.close()
        self._append(w.CrashedFrame, exit_code=code, stderr_tail=tail, hint=hint, restarting=False)
        self._move(w.SessionState.CRASHED)
        self._release_viewers()

    async def _close_connection(self) -> None:
        if self._turn is not None and not self._turn.done():
            self._turn.cancel()
        if self._conn is not None:
            await self._conn.close()

    def _adopt(self, acp_session_id: str) -> None:
        self.acp_session_id = acp_session_id
        self._store.update_agent_session(self.id, acp_session_id=acp_session_id)

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
        if self._on_frame is not None:
            self._on_frame(self.id)
        for queue in list(self._viewers):
            try:
                queue.put_nowait((seq, body))
            except asyncio.QueueFull:  # a viewer this far behind reconnects with after=N
                self._viewers.discard(queue)
                _end_viewer(queue)

    def _move(self, state: w.SessionState) -> None:
        self.state = state
        self._store.update_agent_session(self.id, state=state)
        if state == w.SessionState.IDLE and (waiting := self._store.next_queued_prompt(self.id)):
            self._begin(waiting[1], waiting[0])

    def _require_live(self) -> None:
        if self.state in (*ENDED, w.SessionState.STARTING, w.SessionState.RESTARTING):
            raise AgentSessionEnded(
                f"session {self.id} is {self.state}: "
                + ("wait for it to resume" if self.state not in ENDED else "start a new session")
            )

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
