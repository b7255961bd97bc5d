"""TerminalManager: the node's terminal sessions, served over one WebSocket per client.

It turns protocol frames (wire/terminal.py, docs/protocols/terminal.md) into operations on
sessions (agent/terminals/session.py): create, attach by offset, detach, rename, resize,
input, close. It enforces the limits (frame size, frame rate, sessions per workspace),
keeps the tabs in the Store, and closes sessions left without a viewer for the orphan
grace period.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import WSCloseCode, WSMsgType, web

from agent.activity import Activity
from agent.config import AgentConfig
from agent.errors import WorkspaceNotFound, WorkspaceNotRunning
from agent.persistence import Store
from agent.shell import ShellCommand
from agent.terminals.pty import ExitStatus, InputOverflow, SpawnError
from agent.terminals.session import (
    Cancellable,
    Clock,
    Connection,
    Session,
    SessionState,
    Viewer,
)
from wire import terminal as p

log = logging.getLogger(__name__)

WRITER_DRAIN_SECONDS = 2.0  # at shutdown, time to deliver the last frames before closing
SESSION_ID_BYTES = 6  # 12 hex characters
# What a viewer may not do to an agent's command tab (it may attach, detach and list).
READ_ONLY_REFUSED = (p.InputFrame, p.ResizeFrame, p.RenameFrame, p.CloseFrame)

ShellFor = Callable[[str], Awaitable[ShellCommand]]
# The injected timer: schedule(delay_seconds, callback) -> a handle with cancel().
Schedule = Callable[[float, Callable[[], None]], Cancellable]


class TerminalManager:
    """Every terminal session of this node, and the WebSocket protocol that drives them."""

    def __init__(
        self,
        config: AgentConfig,
        store: Store,
        shell_for: ShellFor,
        *,
        schedule: Schedule | None = None,
        clock: Clock = time.monotonic,
        activity: Activity | None = None,
    ) -> None:
        self._config = config
        self._store = store
        self._shell_for = shell_for
        self._schedule = schedule or _call_later
        self._clock = clock  # frame rates and stalled viewers
        self.activity = activity or Activity(clock)  # input keeps a workspace from idling
        self._sessions: dict[tuple[str, str], Session] = {}
        self._starting: set[tuple[str, str]] = set()  # created, their shell not yet started
        self._connections: set[Connection] = set()

    # -- public API -------------------------------------------------------------------

    def tabs(self, workspace_id: str) -> list[dict[str, Any]]:
        """The workspace's tabs in order, each marked live or not (a SessionInfo dict)."""
        return [info.model_dump() for info in self._infos(workspace_id)]

    def viewers(self, workspace_id: str) -> int:
        """Terminal sockets open on the workspace now."""
        return sum(1 for conn in self._connections if conn.workspace_id == workspace_id)

    async def handle(self, ws: web.WebSocketResponse, workspace_id: str) -> None:
        """Run the terminal protocol on a prepared WebSocket until it closes."""
        conn = Connection(ws, workspace_id, self._config.max_frames_per_second, self._clock)
        self._connections.add(conn)
        writer = conn.writer = asyncio.create_task(conn.write_loop())
        try:
            async for message in ws:
                if message.type is WSMsgType.TEXT:
                    await self._on_text(conn, message.data)
                elif message.type is WSMsgType.BINARY:
                    self._on_binary(conn, message.data)
                if conn.closing or writer.done():
                    break
        finally:
            self._connections.discard(conn)
            for viewer in list(conn.viewers.values()):
                self._detach(viewer)
            conn.closing = True
            conn.wake()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(writer, WRITER_DRAIN_SECONDS)
            if not ws.closed:
                with contextlib.suppress(TimeoutError, ConnectionError):
                    await asyncio.wait_for(ws.close(), WRITER_DRAIN_SECONDS)

    async def start_owned(
        self, workspace_id: str, command: ShellCommand, name: str, owner: str, ring_bytes: int
    ) -> Session:
        """Start `command` as a read-only tab of the workspace that agent session `owner`
        drives (ACP terminal/*); it stays listed after it ends, until `forget`. Raises
        SpawnError."""
        session_id = f"{owner}-{secrets.token_hex(SESSION_ID_BYTES // 2)}"
        session = Session(workspace_id, session_id, name, ring_bytes, self._clock, owner)
        await session.start(command, p.DEFAULT_COLS, p.DEFAULT_ROWS, self._config)
        self._sessions[workspace_id, session_id] = session
        session.tasks.add(asyncio.create_task(self._run(session)))
        log.info("terminal.agent_command workspace_id=%s session_id=%s", workspace_id, session_id)
        return session

    async def kill(self, session: Session) -> None:
        """End an agent's command on the signal ladder and wait for its end."""
        self._end(session, p.ExitReason.KILLED)
        await session.done.wait()

    async def forget(self, session: Session) -> None:
        """Kill it if it runs, then drop its tab."""
        await self.kill(session)
        self._sessions.pop((session.workspace_id, session.id), None)

    async def close_workspace(self, workspace_id: str) -> None:
        """End every session of a stopped or deleted workspace (their tabs stay listed)."""
        sessions = [s for s in self._sessions.values() if s.workspace_id == workspace_id]
        await self._close_all(sessions, p.ExitReason.WORKSPACE_STOPPED)

    async def close(self) -> None:
        """End every session, deliver the exit frames, close every WebSocket."""
        await self._close_all(list(self._sessions.values()), p.ExitReason.AGENT_STOPPING)
        for conn in list(self._connections):
            conn.closing = True  # the writer delivers what is queued (the exit frames), ends
            conn.wake()
            with contextlib.suppress(TimeoutError, ConnectionError):
                if conn.writer is not None:
                    await asyncio.wait_for(asyncio.shield(conn.writer), WRITER_DRAIN_SECONDS)
                await asyncio.wait_for(
                    conn.ws.close(code=WSCloseCode.GOING_AWAY, message=b"agent stopping"),
                    WRITER_DRAIN_SECONDS,
                )

    # -- frames -----------------------------------------------------------------------

    def _admit(self, conn: Connection, size: int) -> bool:
        if size > self._config.max_frame_bytes:
            message = (
                f"frame of {size} bytes is over the limit of {self._config.max_frame_bytes}; "
                "split input into smaller frames"
            )
            conn.send(p.ErrorFrame(code=p.ErrorCode.FRAME_TOO_LARGE, message=message))
            return False
        if not conn.bucket.take():
            message = (
                f"more than {self._config.max_frames_per_second} frames per second; "
                "this frame was ignored, send fewer, larger frames"
            )
            conn.send(p.ErrorFrame(code=p.ErrorCode.RATE_LIMITED, message=message))
            return False
        return True

    async def _on_text(self, conn: Connection, text: str) -> None:
        size = len(text)
        if size * 4 > self._config.max_frame_bytes:  # UTF-8 takes at most 4 bytes a char
            size = len(text.encode("utf-8", "surrogatepass"))
        if not self._admit(conn, size):
            return
        try:
            frame = p.parse_client_frame(text)
        except p.FrameError as exc:
            conn.send(p.ErrorFrame(code=p.ErrorCode.BAD_FRAME, message=str(exc)))
            return
        if isinstance(frame, p.CreateFrame):
            await self._create(conn, frame)
        elif isinstance(frame, p.ListFrame):
            infos = self._infos(conn.workspace_id)
            conn.send(p.SessionsFrame(request_id=frame.request_id, sessions=infos))
        elif isinstance(frame, READ_ONLY_REFUSED) and self._refused_read_only(
            conn, frame.session_id, frame.request_id
        ):
            return
        elif isinstance(frame, p.RenameFrame):
            self._rename(conn, frame)
        elif isinstance(frame, p.CloseFrame):
            self._close_request(conn, frame)
        else:
            watching = isinstance(frame, p.AttachFrame | p.DetachFrame)
            session = self._session_for(conn, frame.session_id, frame.request_id, watching)
            if session is None:
                return
            if isinstance(frame, p.AttachFrame):
                self._attach(conn, session, frame)
            elif isinstance(frame, p.DetachFrame):
                viewer = conn.viewers.get(session.id)
                if viewer is not None:
                    self._detach(viewer)
                conn.send(p.DetachedFrame(request_id=frame.request_id, session_id=session.id))
            elif isinstance(frame, p.ResizeFrame):
                cols, rows = session.process.resize(frame.cols, frame.rows)
                resized = p.ResizedFrame(session_id=session.id, cols=cols, rows=rows)
                self._broadcast(conn, session, resized, frame.request_id)
            else:
                assert isinstance(frame, p.InputFrame)
                self._input(conn, session, frame.data.encode(), frame.request_id)

    def _on_binary(self, conn: Connection, data: bytes) -> None:
        if not self._admit(conn, len(data)):
            return
        try:
            session_id, payload = p.decode_input(data)
        except p.FrameError as exc:
            conn.send(p.ErrorFrame(code=p.ErrorCode.BAD_FRAME, message=str(exc)))
            return
        session = self._session_for(conn, session_id, None)
        if session is not None and not self._refused_read_only(conn, session.id, None):
            self._input(conn, session, payload, None)

    def _refused_read_only(self, conn: Connection, session_id: str, request_id: str | None) -> bool:
        """Input, resize, rename and close of an agent's command tab get a read_only error."""
        session = self._sessions.get((conn.workspace_id, session_id))
        if session is None or session.owner is None:
            return False
        message = (
            f"this tab shows a command of agent session {session.owner} and takes no input, "
            "resize, rename or close: watch it, or cancel the agent's turn"
        )
        conn.send(
            p.ErrorFrame(
                request_id=request_id,
                session_id=session.id,
                code=p.ErrorCode.READ_ONLY,
                message=message,
            )
        )
        return True

    # -- operations ---------------------------------------------------------------------

    async def _create(self, conn: Connection, frame: p.CreateFrame) -> None:
        workspace_id = conn.workspace_id
        session_id = frame.session_id or secrets.token_hex(SESSION_ID_BYTES)
        error = self._cannot_create(workspace_id, session_id)
        if error is None:
            try:
                command = await self._shell_for(workspace_id)
            except (WorkspaceNotRunning, WorkspaceNotFound) as exc:
                error = (p.ErrorCode.WORKSPACE_NOT_RUNNING, f"{exc}; start the workspace first")
            else:
                error = self._cannot_create(workspace_id, session_id)  # checked again: we awaited
        if error is not None:
            code, message = error
            conn.send(p.ErrorFrame(request_id=frame.request_id, code=code, message=message))
            return
        tabs = self._store.tabs(workspace_id)
        name = frame.name or _stored_name(tabs, session_id) or f"Terminal {len(tabs) + 1}"
        ring_bytes = self._config.terminal_ring_bytes
        session = Session(workspace_id, session_id, name, ring_bytes, self._clock)
        self._starting.add((workspace_id, session_id))
        try:
            await session.start(command, frame.cols, frame.rows, self._config)
        except SpawnError as exc:
            message = f"{exc}; check the workspace's shell"
            conn.send(
                p.ErrorFrame(
                    request_id=frame.request_id, code=p.ErrorCode.SPAWN_FAILED, message=message
                )
            )
            return
        finally:
            self._starting.discard((workspace_id, session_id))
        self._sessions[workspace_id, session_id] = session
        self._store.add_tab(workspace_id, session_id, name)
        session.tasks.add(asyncio.create_task(self._run(session)))
        log.info("terminal.created workspace_id=%s session_id=%s", workspace_id, session_id)
        self._add_viewer(conn, session, 0)
        conn.send(p.CreatedFrame(request_id=frame.request_id, session=session.info()))

    def _cannot_create(self, workspace_id: str, session_id: str) -> tuple[p.ErrorCode, str] | None:
        key = (workspace_id, session_id)
        if key in self._sessions or key in self._starting:
            return p.ErrorCode.SESSION_EXISTS, f"session {session_id} is already running; attach"
        shells = [key for key, session in self._sessions.items() if session.owner is None]
        live = sum(1 for ws_id, _ in (*shells, *self._starting) if ws_id == workspace_id)
        if live >= self._config.max_sessions:
            return (
                p.ErrorCode.TOO_MANY_SESSIONS,
                f"this workspace already has {live} terminal sessions (the limit); "
                "close one before opening another",
            )
        return None

    async def _run(self, session: Session) -> None:
        status: ExitStatus = await session.process.wait()
        if session.stopper is not None:
            await session.stopper  # the exit frame comes once nothing of the session runs
        session.process.close()
        reason = session.close_reason or p.ExitReason.EXITED
        session.exit_status = status
        session.move(SessionState.ENDED)
        if session.orphan_timer is not None:
            session.orphan_timer.cancel()
        if session.owner is None:  # an agent's command stays listed until its owner forgets it
            self._sessions.pop((session.workspace_id, session.id), None)
        if reason in (p.ExitReason.EXITED, p.ExitReason.CLOSED, p.ExitReason.ORPHANED):
            self._store.remove_tab(session.workspace_id, session.id)
        exit_frame = p.ExitFrame(
            session_id=session.id, exit_code=status.exit_code, signal=status.signal, reason=reason
        )
        session.exit_json = exit_frame.model_dump_json()
        for viewer in session.viewers:
            viewer.connection.wake()
        watching = {viewer.connection for viewer in session.viewers}
        for conn in session.closers - watching:  # asked to close it without watching it
            conn.send(exit_frame)
        log.info(
            "terminal.ended workspace_id=%s session_id=%s reason=%s exit_code=%s signal=%s",
            session.workspace_id,
            session.id,
            reason,
            status.exit_code,
            status.signal,
        )
        session.done.set()

    def _end(self, session: Session, reason: p.ExitReason) -> None:
        """Start closing a session on the signal ladder (its _run task reports the end)."""
        if session.state is not SessionState.RUNNING:
            return
        session.close_reason = reason
        session.move(SessionState.CLOSING)
        session.stopper = asyncio.create_task(session.stop())

    async def _close_all(self, sessions: list[Session], reason: p.ExitReason) -> None:
        for session in sessions:
            self._end(session, reason)
        await asyncio.gather(*(session.done.wait() for session in sessions))

    def _close_request(self, conn: Connection, frame: p.CloseFrame) -> None:
        session = self._sessions.get((conn.workspace_id, frame.session_id))
        if session is not None:
            session.closers.add(conn)
            self._end(session, p.ExitReason.CLOSED)
            return
        # Not live: closing a tab left over from before an agent restart just forgets it.
        if self._store.remove_tab(conn.workspace_id, frame.session_id):
            conn.send(
                p.ExitFrame(
                    session_id=frame.session_id,
                    exit_code=None,
                    signal=None,
                    reason=p.ExitReason.CLOSED,
                )
            )
        else:
            self._unknown(conn, frame.session_id, frame.request_id)

    def _rename(self, conn: Connection, frame: p.RenameFrame) -> None:
        session = self._sessions.get((conn.workspace_id, frame.session_id))
        renamed_tab = self._store.rename_tab(conn.workspace_id, frame.session_id, frame.name)
        if session is None and not renamed_tab:
            self._unknown(conn, frame.session_id, frame.request_id)
            return
        renamed = p.RenamedFrame(session_id=frame.session_id, name=frame.name)
        if session is None:
            conn.send(renamed.model_copy(update={"request_id": frame.request_id}))
            return
        session.name = frame.name
        self._broadcast(conn, session, renamed, frame.request_id)

    def _attach(self, conn: Connection, session: Session, frame: p.AttachFrame) -> None:
        ring = session.ring
        wanted = frame.offset
        reset = wanted is not None and not ring.start <= wanted <= ring.end
        offset = ring.start if wanted is None or reset else wanted
        old = conn.viewers.get(session.id)
        if old is not None:
            session.viewers.discard(old)
        self._add_viewer(conn, session, offset)
        info = session.info()
        conn.send(
            p.AttachedFrame(request_id=frame.request_id, session=info, offset=offset, reset=reset)
        )

    def _add_viewer(self, conn: Connection, session: Session, offset: int) -> None:
        viewer = Viewer(conn, session, offset)
        conn.viewers[session.id] = viewer
        session.viewers.add(viewer)
        if session.orphan_timer is not None:
            session.orphan_timer.cancel()
            session.orphan_timer = None
        conn.wake()

    def _detach(self, viewer: Viewer) -> None:
        session, conn = viewer.session, viewer.connection
        if conn.viewers.get(session.id) is viewer:
            del conn.viewers[session.id]
        session.viewers.discard(viewer)
        if session.state is SessionState.ENDED:
            return
        session.flow()  # the viewer that held back the terminal may be the one leaving
        if session.owner is not None:
            return  # an agent's command is not orphaned: its agent session ends it
        if not session.viewers and session.orphan_timer is None:
            grace = self._config.orphan_grace_seconds
            session.orphan_timer = self._schedule(grace, lambda: self._orphan_expired(session))

    def _orphan_expired(self, session: Session) -> None:
        session.orphan_timer = None
        if not session.viewers:
            log.info("terminal.orphan_expired session_id=%s", session.id)
            self._end(session, p.ExitReason.ORPHANED)

    def _input(
        self, conn: Connection, session: Session, data: bytes, request_id: str | None
    ) -> None:
        self.activity.touch(session.workspace_id)
        try:
            session.process.write(data)
        except InputOverflow:
            message = "the shell is not reading its input; this input was dropped, retry later"
            conn.send(
                p.ErrorFrame(
                    request_id=request_id,
                    session_id=session.id,
                    code=p.ErrorCode.INPUT_OVERFLOW,
                    message=message,
                )
            )

    # -- helpers ----------------------------------------------------------------------

    def _session_for(
        self, conn: Connection, session_id: str, request_id: str | None, ended_ok: bool = False
    ) -> Session | None:
        session = self._sessions.get((conn.workspace_id, session_id))
        if session is None or (session.state is SessionState.ENDED and not ended_ok):
            self._unknown(conn, session_id, request_id)
            return None
        return session

    def _unknown(self, conn: Connection, session_id: str, request_id: str | None) -> None:
        message = f"no live terminal session {session_id} in this workspace; send list or create"
        conn.send(
            p.ErrorFrame(
                request_id=request_id,
                session_id=session_id,
                code=p.ErrorCode.UNKNOWN_SESSION,
                message=message,
            )
        )

    def _broadcast(
        self, conn: Connection, session: Session, frame: p.ServerFrame, request_id: str | None
    ) -> None:
        """Tell every viewer of the session, and the requester (with its request id)."""
        for viewer in session.viewers:
            if viewer.connection is not conn:
                viewer.connection.send(frame)
        conn.send(frame.model_copy(update={"request_id": request_id}))

    def _infos(self, workspace_id: str) -> list[p.SessionInfo]:
        infos = []
        seen = set()
        for tab in self._store.tabs(workspace_id):
            session = self._sessions.get((workspace_id, tab["session_id"]))
            seen.add(tab["session_id"])
            infos.append(session.info() if session else _stale_info(tab))
        for (ws_id, session_id), session in self._sessions.items():
            if ws_id == workspace_id and session_id not in seen:
                infos.append(session.info())
        return infos


def _stale_info(tab: dict[str, Any]) -> p.SessionInfo:
    return p.SessionInfo(
        session_id=tab["session_id"],
        name=tab["name"],
        live=False,
        cols=None,
        rows=None,
        offset=None,
        viewers=0,
    )


def _stored_name(tabs: list[dict[str, Any]], session_id: str) -> str | None:
    return next((tab["name"] for tab in tabs if tab["session_id"] == session_id), None)


def _call_later(delay_seconds: float, callback: Callable[[], None]) -> Cancellable:
    return asyncio.get_running_loop().call_later(delay_seconds, callback)
