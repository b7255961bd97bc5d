"""The ACP gateway: agent sessions per workspace, and their viewers.

Sessions run in the workspace's container as its remote user, in its folder
(ContainerLauncher); the adapter reaches the model through the model proxy on the
workspace's channel, with the channel's token as a stand-in key: the owner's real key is
fetched from the control plane per session and kept in ModelSessions (memory only). A
viewer WebSocket (viewers.py) gets the stored frames after `after`, then the live ones
(docs/protocols/agent-sessions.md). A session made with a chat link also sends its frames
to that project chat (outbox.py).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from functools import partial
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from agent.channel import WorkspaceChannel
from agent.channel.model_sessions import ModelSessions
from agent.config import AgentConfig
from agent.control_plane import ControlPlane
from agent.errors import (
    AgentError,
    AgentNeedsContainer,
    AgentSessionIdTaken,
    AgentSessionNotFound,
    AgentStartFailed,
    BadRequest,
    PermissionRequestNotFound,
    WorkspaceNotRunning,
)
from agent.persistence import Store
from agent.sessions.container import ContainerLauncher, ContainerUser
from agent.sessions.outbox import ChatOutbox
from agent.sessions.permissions import UnknownOption, UnknownRequest
from agent.sessions.session import AgentSession
from agent.sessions.tools import ADAPTERS
from agent.sessions.viewers import serve_viewer
from agent.terminals.manager import TerminalManager
from agent.workspaces.git import channel_git_env
from agent.workspaces.manager import WorkspaceManager
from wire import agent_session as w
from wire.states import LifecycleState

log = logging.getLogger(__name__)

MODEL_PROXY_PREFIX = "/model/sessions/"
# States of a session that claims to run (resume_all brings them back after a restart).
RUNNING_STATES = frozenset(
    {
        w.SessionState.STARTING,
        w.SessionState.IDLE,
        w.SessionState.PROMPTING,
        w.SessionState.RESTARTING,
    }
)
# A workspace that stops or goes waits this long for its chats' last frames to be sent.
OUTBOX_FLUSH_SECONDS = 5.0


class AgentSessionManager:
    def __init__(
        self,
        config: AgentConfig,
        store: Store,
        workspaces: WorkspaceManager,
        control_plane: ControlPlane,
        model_sessions: ModelSessions,
        terminals: TerminalManager,
    ) -> None:
        self._config = config
        self._store = store
        self._workspaces = workspaces
        self._control_plane = control_plane
        self._model_sessions = model_sessions
        self._terminals = terminals
        self._live: dict[str, AgentSession] = {}
        self._creating: dict[str, asyncio.Future[None]] = {}  # ids of creates under way
        self._outbox = ChatOutbox(store, control_plane, config.outbox_retry_max_seconds)
        self._adapters = {**ADAPTERS, **config.agent_commands}

    async def resume_all(self) -> None:
        """After the node agent restarted: every stored session that claims to run gets a
        new adapter that reloads its conversation, or is marked stopped (its workspace does
        not run) — none is left claiming to run."""
        for workspace in self._store.workspaces():
            for record in self._store.agent_sessions(workspace["id"]):
                if w.SessionState(record["state"]) in RUNNING_STATES:
                    await self._resume(workspace, record)
        self._outbox.resume()

    async def _resume(self, workspace: dict[str, Any], record: dict[str, Any]) -> None:
        target = _target(workspace)
        session_id = record["id"]
        if workspace["state"] != LifecycleState.RUNNING or target is None:
            reason = "workspace_stopped"
            log.info("agent_session.not_resumed id=%s reason=%s", session_id, reason)
            frame = partial(w.StoppedFrame, type="stopped", reason=reason)
            self._end_stored(session_id, frame, w.SessionState.STOPPED)
            return
        try:
            if record["agent"] not in self._adapters:  # the node's configuration changed
                raise BadRequest(f"agent {record['agent']!r} is no longer configured here.")
            env = await self._model_access(workspace["id"], session_id)
        except AgentError as exc:  # no key any more, the control plane unreachable, …
            log.info("agent_session.not_resumed id=%s reason=%s", session_id, exc.code)
            hint = f"{exc.message} Start a new agent session once that is fixed."
            frame = partial(
                w.CrashedFrame,
                type="crashed",
                exit_code=None,
                stderr_tail="",
                hint=hint,
                restarting=False,
            )
            self._end_stored(session_id, frame, w.SessionState.CRASHED)
            return
        session = self._session(record, target)
        self._live[session_id] = session
        session.resume(self._adapters[record["agent"]], env)

    def _end_stored(
        self, session_id: str, frame: Callable[..., BaseModel], state: w.SessionState
    ) -> None:
        """A stored session that will not run again: its last frame, then its state."""
        build = lambda seq: frame(seq=seq).model_dump_json()  # noqa: E731
        self._store.append_frame(session_id, build, self._config.session_log_bytes)
        self._store.update_agent_session(session_id, state=state)
        self._outbox.notify(session_id)

    # --- routes' operations -----------------------------------------------------------------

    async def create(
        self, workspace_id: str, spec: w.NewAgentSession
    ) -> tuple[w.AgentSessionInfo, bool]:
        """Start an adapter for the workspace; returns once its ACP session is ready (and
        its first turn, when `spec.prompt` is given, has begun), with True. A session of
        `spec.id` already made here is answered as it is, with False."""
        record = self._workspaces.get(workspace_id)
        if spec.id is not None:
            if (creating := self._creating.get(spec.id)) is not None:
                await asyncio.shield(creating)  # the same call delivered twice at once
            existing = self._store.agent_session(spec.id)
            if existing is not None:
                if existing["workspace_id"] != workspace_id:
                    raise AgentSessionIdTaken(
                        f"agent session id {spec.id} is taken by another workspace's "
                        "session: choose another id"
                    )
                return self._info(existing), False
            self._creating[spec.id] = asyncio.get_running_loop().create_future()
        try:
            return await self._create(record, spec), True
        finally:
            if spec.id is not None and (done := self._creating.pop(spec.id, None)):
                done.set_result(None)

    async def _create(self, record: dict[str, Any], spec: w.NewAgentSession) -> w.AgentSessionInfo:
        workspace_id = record["id"]
        if spec.agent not in self._adapters:
            raise BadRequest(
                f"agent: {spec.agent!r} is not an agent this node runs; it runs "
                + ", ".join(sorted(self._adapters))
                + " (its operator adds others with SAM_AGENT_COMMANDS)"
            )
        if record["state"] != LifecycleState.RUNNING:
            raise WorkspaceNotRunning(
                f"workspace {workspace_id} is {record['state']}; start it to run an agent"
            )
        if not record.get("container_id"):
            raise AgentNeedsContainer(
                "agent sessions run inside the workspace's container, and this node's "
                "backend (host) has none: use SAM_BACKEND=docker"
            )
        target = _target(record)
        assert target is not None
        session_id = spec.id or f"as-{secrets.token_hex(8)}"
        env = await self._model_access(workspace_id, session_id)
        chat = spec.chat.model_dump() if spec.chat is not None else None
        stored = self._store.add_agent_session(
            session_id,
            workspace_id,
            spec.agent,
            spec.permission_mode,
            w.SessionState.STARTING,
            chat,
        )
        session = self._session(stored, target)
        self._live[session_id] = session
        try:
            await session.start(self._adapters[spec.agent], env)
        except AgentStartFailed:
            del self._live[session_id]
            self._model_sessions.remove(session_id)
            raise
        log.info("agent_session.started id=%s workspace=%s", session_id, workspace_id)
        if spec.prompt is not None:
            session.prompt(spec.prompt, spec.prompt_id)
        return self.info(workspace_id, session_id)

    def list(self, workspace_id: str) -> w.AgentSessionList:
        self._workspaces.get(workspace_id)
        records = self._store.agent_sessions(workspace_id)
        return w.AgentSessionList(sessions=[self._info(record) for record in records])

    def info(self, workspace_id: str, session_id: str) -> w.AgentSessionInfo:
        return self._info(self._record(workspace_id, session_id))

    def live(self, workspace_id: str, session_id: str) -> AgentSession:
        """The running session; a stored one that is not running answers as ended."""
        self._record(workspace_id, session_id)
        session = self._live.get(session_id)
        if session is None:
            raise AgentSessionNotFound(
                f"agent session {session_id} is not running on this node (stored only)"
            )
        return session

    def answer_permission(
        self, workspace_id: str, session_id: str, request_id: str, option_id: str
    ) -> None:
        """The same answer as a viewer's `answer_permission` (the first answer wins)."""
        try:
            self.live(workspace_id, session_id).answer(request_id, option_id)
        except UnknownRequest:
            raise PermissionRequestNotFound(
                f"no open permission request {request_id!r} in session {session_id} "
                "(answered already, or timed out?)"
            ) from None
        except UnknownOption as exc:
            raise BadRequest(f"option_id: {exc}") from None

    async def stop(self, workspace_id: str, session_id: str) -> w.AgentSessionInfo:
        self._record(workspace_id, session_id)
        session = self._live.pop(session_id, None)
        self._model_sessions.remove(session_id)
        if session is not None:
            await session.stop("requested")
        return self.info(workspace_id, session_id)

    async def close_workspace(self, workspace_id: str) -> None:
        """Stop the workspace's sessions (it is stopping, rebuilding or going away)."""
        self._model_sessions.remove_workspace(workspace_id)
        for session_id, session in list(self._live.items()):
            if session.workspace_id == workspace_id:
                del self._live[session_id]
                await session.stop("workspace_stopped")
        ids = [record["id"] for record in self._store.agent_sessions(workspace_id)]
        await self._outbox.flush(ids, OUTBOX_FLUSH_SECONDS)

    async def close(self) -> None:
        live, self._live = list(self._live.values()), {}
        # Suspended, not stopped: the agent resumes them when it starts again (resume_all).
        await asyncio.gather(*(session.suspend() for session in live))
        await self._outbox.close()

    # --- activity (agent/activity.py) ----------------------------------------------------------

    def busy(self, workspace_id: str) -> bool:
        """An agent session of the workspace is prompting (silent or not)."""
        return any(
            session.workspace_id == workspace_id and session.state == w.SessionState.PROMPTING
            for session in self._live.values()
        )

    def viewers(self, workspace_id: str) -> int:
        return sum(
            session.viewer_count
            for session in self._live.values()
            if session.workspace_id == workspace_id
        )

    # --- viewers ------------------------------------------------------------------------------

    async def view(
        self, ws: web.WebSocketResponse, workspace_id: str, session_id: str, after: int
    ) -> None:
        """Send the frames after `after`, then the live ones, until either side ends;
        answer `answer_permission` frames."""
        record = self._record(workspace_id, session_id)
        session = self._live.get(session_id)
        rate = self._config.max_frames_per_second
        await serve_viewer(ws, self._store, record, session, after, rate)

    # --- inside -------------------------------------------------------------------------------

    def _record(self, workspace_id: str, session_id: str) -> dict[str, Any]:
        self._workspaces.get(workspace_id)
        record = self._store.agent_session(session_id)
        if record is None or record["workspace_id"] != workspace_id:
            raise AgentSessionNotFound(f"no agent session {session_id} in workspace {workspace_id}")
        return record

    async def _model_access(self, workspace_id: str, session_id: str) -> dict[str, str]:
        """The adapter's model settings for a session about to start (or start again): the
        owner's key fetched from the control plane and handed to the model proxy (memory
        only), the proxy's address on the workspace's channel and the stand-in key."""
        channel = self._workspaces.channels and self._workspaces.channels.get(workspace_id)
        if not channel:
            raise AgentStartFailed(
                f"workspace {workspace_id} has no channel to SAM for the model proxy (made "
                "before channels existed?): rebuild the workspace",
                detail="",
            )
        credential = await self._control_plane.agent_credential(workspace_id)
        self._model_sessions.add(session_id, workspace_id, credential)
        return _adapter_env(channel, session_id)

    def _session(self, record: dict[str, Any], target: ContainerUser) -> AgentSession:
        launcher = ContainerLauncher(target)
        return AgentSession(
            record,
            self._store,
            self._config,
            launcher,
            target.folder,
            self._terminals,
            on_frame=self._frame_hook(record),
        )

    def _frame_hook(self, record: dict[str, Any]) -> Callable[[str], None]:
        """After each stored frame: the workspace was used, and a chat's frame goes out."""
        workspace_id, chat = record["workspace_id"], bool(record["chat"])

        def on_frame(session_id: str) -> None:
            self._terminals.activity.touch(workspace_id)
            if chat:
                self._outbox.notify(session_id)

        return on_frame

    def _info(self, record: dict[str, Any]) -> w.AgentSessionInfo:
        fields = {k: v for k, v in record.items() if k in w.AgentSessionInfo.model_fields}
        fields["model_usage"] = self._store.model_usage(record["id"])
        return w.AgentSessionInfo.model_validate(fields)


def _adapter_env(channel: WorkspaceChannel, session_id: str) -> dict[str, str]:
    """The model proxy's address for this session, and the channel's token as the key: the
    only credential the container ever holds, and one that dies with the workspace. git in
    the agent's tools gets its read token through the channel too (SAM's credential helper,
    given as command-line config through the environment)."""
    return {
        "ANTHROPIC_BASE_URL": channel.url(MODEL_PROXY_PREFIX + session_id),
        "ANTHROPIC_API_KEY": channel.token,
        **channel_git_env(channel),
    }


def _target(workspace: dict[str, Any]) -> ContainerUser | None:
    """Where the workspace's agent sessions run; None without a container (host backend)."""
    if not workspace.get("container_id"):
        return None
    return ContainerUser(
        container=workspace["container_id"],
        user=workspace["remote_user"],
        folder=workspace["remote_folder"],
        env=workspace.get("remote_env") or {},
    )
