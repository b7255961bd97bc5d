"""Agent sessions: the node agent's routes and viewer WebSocket frames, declared once.

An agent session is an ACP adapter (Claude Code) running inside a workspace's container;
docs/protocols/agent-sessions.md describes the routes and the rules. Everything the
session does reaches viewers as a JSON text frame with a `seq`: 1, 2, 3, … per session,
stored on the node, so a viewer that reconnects with `?after=N` receives exactly the
frames after N, then the live ones. Only `error` and `gap` frames carry no `seq`: they are
about one connection, not the session.

The ACP payloads inside frames (`update`, `tool_call`, `options`) are the adapter's own
JSON, as the ACP schema (the `agent-client-protocol` package) defines them: they are
carried, not declared again here. Golden files in tests/golden/agent_session/ pin every
frame; the SPA's tests load the same files.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

from wire.chat import ChatLink

MAX_PROMPT_CHARS = 100_000
# The one cap on a request body to an agent's routes (the edge's and the agent's): it admits
# the largest valid prompt however a JSON encoder writes it, each code point at worst as an
# escaped surrogate pair (\uXXXX\uXXXX, 12 bytes), plus room for the other fields.
MAX_BODY_BYTES = 12 * MAX_PROMPT_CHARS + 16 * 1024
MAX_ID_CHARS = 64
MAX_TAIL_CHARS = 4096

SessionId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9_-]+$")
]
Seq = Annotated[int, Field(ge=1)]
PromptText = Annotated[str, StringConstraints(min_length=1, max_length=MAX_PROMPT_CHARS)]
# An agent type: `claude-code` is built in; a node may configure others (codex-acp, gemini,
# opencode, …) with SAM_AGENT_COMMANDS (agent/config.py).
AGENT_TYPE_PATTERN = r"^[a-z][a-z0-9-]{0,31}$"
AgentType = Annotated[str, StringConstraints(pattern=AGENT_TYPE_PATTERN)]


class PermissionMode(StrEnum):
    """How much the agent may do without asking; each maps onto an adapter mode."""

    ASK = "ask"  # every edit and command asks the viewers
    ACCEPT_EDITS = "accept_edits"  # file edits go ahead; commands ask
    BYPASS = "bypass"  # nothing asks


class SessionState(StrEnum):
    STARTING = "starting"  # the adapter is starting (initialize, session/new)
    IDLE = "idle"  # ready for a prompt
    PROMPTING = "prompting"  # a turn is running
    RESTARTING = "restarting"  # the adapter exited (or the node agent restarted): coming back
    STOPPED = "stopped"  # stopped on request, or with its workspace
    CRASHED = "crashed"  # the adapter exited by itself or could not start


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- routes -------------------------------------------------------------------------------


PromptId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9_-]+$")
]


class NewAgentSession(_Model):
    """POST /workspaces/{id}/agent-sessions

    With an `id` the call is idempotent: a session of that id already there is answered as
    it is (the control plane's TaskRunner may repeat a step after a crash)."""

    id: SessionId | None = None  # None: the node picks one
    agent: AgentType = "claude-code"
    prompt: PromptText | None = None  # sent as the first turn once the adapter is ready
    prompt_id: PromptId | None = None  # names that first prompt (see Prompt.id)
    permission_mode: PermissionMode = PermissionMode.ASK
    chat: ChatLink | None = None  # its frames also go to this project chat (wire/chat.py)


class Prompt(_Model):
    """POST /workspaces/{id}/agent-sessions/{session_id}/prompt

    With an `id` the call is idempotent (a prompt of that id is taken once, however often it
    is delivered), and a prompt that arrives during a turn waits for it instead of a 409."""

    text: PromptText
    id: PromptId | None = None


class PermissionAnswer(_Model):
    """POST /workspaces/{id}/agent-sessions/{session_id}/permissions/{request_id}: the same
    answer a viewer gives with `answer_permission` (the first answer wins)."""

    option_id: str


class ModelUsage(_Model):
    """Token totals of a session's model requests, as the model proxy counted them."""

    requests: int
    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int
    cache_read_input_tokens: int


class AgentSessionInfo(_Model):
    id: SessionId
    workspace_id: str
    agent: AgentType
    permission_mode: PermissionMode
    state: SessionState
    acp_session_id: str | None  # the adapter's own id, once session/new answered
    last_seq: int  # the newest frame's seq (0: none yet)
    created_at: datetime
    model_usage: ModelUsage | None = None  # None: no model request yet


class AgentSessionList(_Model):
    sessions: list[AgentSessionInfo]


# --- viewer frames: server -> client --------------------------------------------------------


class _Frame(_Model):
    seq: Seq


class StartedFrame(_Frame):
    """The adapter is ready: what the gateway asked of it and what it answered."""

    type: Literal["started"]
    agent: AgentType
    acp_session_id: str
    permission_mode: PermissionMode
    initialize: dict[str, Any]  # the `initialize` params the gateway sent (capabilities)
    agent_info: dict[str, Any] | None  # the adapter's `agentInfo`, when it sends one


class PromptFrame(_Frame):
    """A turn began with this prompt (from any client)."""

    type: Literal["prompt"]
    text: str
    prompt_id: str | None = None  # the Prompt's id, when it had one


class UpdateFrame(_Frame):
    """One `session/update` of the adapter: its `update` object as sent (ACP schema)."""

    type: Literal["update"]
    update: dict[str, Any]


class PermissionRequestFrame(_Frame):
    """The adapter asks; any viewer may answer with `answer_permission`, the first wins."""

    type: Literal["permission_request"]
    request_id: str
    tool_call: dict[str, Any]  # ACP ToolCallUpdate
    options: list[dict[str, Any]]  # ACP PermissionOption: optionId, name, kind


class PermissionResolvedFrame(_Frame):
    type: Literal["permission_resolved"]
    request_id: str
    outcome: Literal["selected", "cancelled"]
    option_id: str | None  # the option chosen; None when cancelled
    by: Literal["viewer", "timeout", "cancel", "stop"]


class TurnEndedFrame(_Frame):
    type: Literal["turn_ended"]
    stop_reason: str  # ACP StopReason: end_turn, cancelled, max_tokens, refusal, …


class AgentErrorFrame(_Frame):
    """Something went wrong that did not end the adapter."""

    type: Literal["agent_error"]
    code: Literal["malformed_message", "message_too_large", "prompt_failed", "prompt_timeout"]
    message: str


class CrashedFrame(_Frame):
    """The adapter exited without being asked to (or could not start)."""

    type: Literal["crashed"]
    exit_code: int | None
    stderr_tail: Annotated[str, StringConstraints(max_length=MAX_TAIL_CHARS)]
    hint: str
    restarting: bool  # True: a `restarting` frame follows; False: the session has ended


class RestartingFrame(_Frame):
    """The gateway starts the adapter again after `delay_seconds` (attempt of limit within
    the restart window); `resumed` follows, or `crashed`."""

    type: Literal["restarting"]
    cause: Literal["crashed", "agent_restarted"]  # the adapter exited / the node agent did
    attempt: int
    limit: int
    delay_seconds: float


class ResumedFrame(_Frame):
    """The adapter is back and takes prompts. `context`: `loaded` when the adapter reloaded
    the conversation (ACP session/load), `lost` when it could not and a new ACP session
    began (the agent remembers nothing of the turns before)."""

    type: Literal["resumed"]
    acp_session_id: str
    context: Literal["loaded", "lost"]


class StoppedFrame(_Frame):
    type: Literal["stopped"]
    reason: Literal["requested", "workspace_stopped"]


class GapFrame(_Model):
    """Sent first when frames after `after` are no longer kept (the node keeps a bounded
    log per session): the viewer continues from `first_seq`."""

    type: Literal["gap"]
    after: int
    first_seq: int


class ErrorFrame(_Model):
    type: Literal["error"]
    code: Literal["bad_frame", "unknown_request", "frame_too_large", "rate_limited"]
    message: str


SessionFrame = Annotated[
    StartedFrame
    | PromptFrame
    | UpdateFrame
    | PermissionRequestFrame
    | PermissionResolvedFrame
    | TurnEndedFrame
    | AgentErrorFrame
    | CrashedFrame
    | RestartingFrame
    | ResumedFrame
    | StoppedFrame,
    Field(discriminator="type"),
]
ServerFrame = Annotated[SessionFrame | GapFrame | ErrorFrame, Field(discriminator="type")]


# --- viewer frames: client -> server --------------------------------------------------------


class AnswerPermissionFrame(_Model):
    type: Literal["answer_permission"]
    request_id: str
    option_id: str  # one of the request's options


ClientFrame = AnswerPermissionFrame  # a union once there is a second kind

SESSION_FRAMES: TypeAdapter[Any] = TypeAdapter(SessionFrame)
SERVER_FRAMES: TypeAdapter[Any] = TypeAdapter(ServerFrame)
CLIENT_FRAMES: TypeAdapter[Any] = TypeAdapter(ClientFrame)
