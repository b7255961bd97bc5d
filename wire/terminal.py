"""The terminal WebSocket protocol: every frame type, declared once.

Control frames are JSON text frames, a union discriminated on "type". Terminal bytes
travel in binary frames with a small header (see docs/protocols/terminal.md):

    output (server -> client): 0x01 | id_len u8 | session_id (ASCII) | offset u64 BE | bytes
    input  (client -> server): 0x02 | id_len u8 | session_id (ASCII) | bytes

Golden files in tests/golden/terminal/ pin the JSON shape of each frame; the SPA's tests
load the same files.
"""

from __future__ import annotations

import struct
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError

MAX_ID_CHARS = 64
MAX_NAME_CHARS = 64
MAX_OFFSET = 2**63 - 1
DEFAULT_COLS = 80
DEFAULT_ROWS = 24
OUTPUT_FRAME = 0x01
INPUT_FRAME = 0x02
_OFFSET = struct.Struct(">Q")

SessionId = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS, pattern=r"^[A-Za-z0-9_-]+$")
]
RequestId = Annotated[str, StringConstraints(min_length=1, max_length=MAX_ID_CHARS)]
# Tab names are shown in the UI: no control characters (no escape sequences in a title).
TabName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_NAME_CHARS, pattern=r"^[^\x00-\x1f\x7f]+$"),
]
Offset = Annotated[int, Field(ge=0, le=MAX_OFFSET)]


class ErrorCode(StrEnum):
    BAD_FRAME = "bad_frame"  # not JSON, unknown type, missing/invalid field, bad binary header
    FRAME_TOO_LARGE = "frame_too_large"  # over SAM_MAX_FRAME_BYTES; the frame was ignored
    RATE_LIMITED = "rate_limited"  # over SAM_MAX_FRAMES_PER_SECOND; the frame was ignored
    UNKNOWN_SESSION = "unknown_session"  # no live session with that id in this workspace
    SESSION_EXISTS = "session_exists"  # create with the id of a live session
    TOO_MANY_SESSIONS = "too_many_sessions"  # SAM_MAX_SESSIONS live in this workspace
    WORKSPACE_NOT_RUNNING = "workspace_not_running"  # no shell can be started now
    SPAWN_FAILED = "spawn_failed"  # the shell program could not be started
    INPUT_OVERFLOW = "input_overflow"  # the shell is not reading its input; input dropped
    READ_ONLY = "read_only"  # input, resize, rename or close of an agent's command tab


class ExitReason(StrEnum):
    EXITED = "exited"  # the shell ended by itself (e.g. `exit 3`)
    CLOSED = "closed"  # a client sent `close`
    ORPHANED = "orphaned"  # no viewer for SAM_ORPHAN_GRACE_SECONDS
    WORKSPACE_STOPPED = "workspace_stopped"  # the workspace was stopped or deleted
    AGENT_STOPPING = "agent_stopping"  # the agent is shutting down
    KILLED = "killed"  # the agent session that ran the command killed or released it


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class SessionInfo(_Frame):
    session_id: SessionId
    name: str
    live: bool  # False: a persisted tab whose shell is gone (e.g. after an agent restart)
    cols: int | None
    rows: int | None
    offset: int | None  # bytes of output so far (the end offset); None when not live
    viewers: int
    # A command an agent session runs (ACP terminal/*): its tab is read-only, `owner` is
    # the agent session's id and `name` the command line.
    read_only: bool = False
    owner: str | None = None


# -- client -> server ----------------------------------------------------------------


class CreateFrame(_Frame):
    type: Literal["create"]
    request_id: RequestId | None = None
    name: TabName | None = None
    cols: int = DEFAULT_COLS
    rows: int = DEFAULT_ROWS
    session_id: SessionId | None = None  # reuse a persisted tab's id; None: a new id


class AttachFrame(_Frame):
    type: Literal["attach"]
    request_id: RequestId | None = None
    session_id: SessionId
    offset: Offset | None = None  # the end offset this client already has; None: nothing


class DetachFrame(_Frame):
    type: Literal["detach"]
    request_id: RequestId | None = None
    session_id: SessionId


class CloseFrame(_Frame):
    type: Literal["close"]
    request_id: RequestId | None = None
    session_id: SessionId


class RenameFrame(_Frame):
    type: Literal["rename"]
    request_id: RequestId | None = None
    session_id: SessionId
    name: TabName


class ResizeFrame(_Frame):
    type: Literal["resize"]
    request_id: RequestId | None = None
    session_id: SessionId
    cols: int
    rows: int


class InputFrame(_Frame):
    type: Literal["input"]
    request_id: RequestId | None = None
    session_id: SessionId
    data: str


class ListFrame(_Frame):
    type: Literal["list"]
    request_id: RequestId | None = None


ClientFrame = Annotated[
    CreateFrame
    | AttachFrame
    | DetachFrame
    | CloseFrame
    | RenameFrame
    | ResizeFrame
    | InputFrame
    | ListFrame,
    Field(discriminator="type"),
]

# -- server -> client ----------------------------------------------------------------


class CreatedFrame(_Frame):
    type: Literal["created"] = "created"
    request_id: RequestId | None = None
    session: SessionInfo  # the creating connection is attached from offset 0


class AttachedFrame(_Frame):
    type: Literal["attached"] = "attached"
    request_id: RequestId | None = None
    session: SessionInfo
    offset: int  # output frames for this session continue from here
    reset: bool  # True: the offset asked for was evicted; clear the screen first


class DetachedFrame(_Frame):
    type: Literal["detached"] = "detached"
    request_id: RequestId | None = None
    session_id: SessionId


class RenamedFrame(_Frame):
    type: Literal["renamed"] = "renamed"
    request_id: RequestId | None = None
    session_id: SessionId
    name: str


class ResizedFrame(_Frame):
    type: Literal["resized"] = "resized"
    request_id: RequestId | None = None
    session_id: SessionId
    cols: int  # the size applied, after clamping
    rows: int


class SessionsFrame(_Frame):
    type: Literal["sessions"] = "sessions"
    request_id: RequestId | None = None
    sessions: list[SessionInfo]


class ResetFrame(_Frame):
    type: Literal["reset"] = "reset"
    session_id: SessionId
    offset: int  # this viewer fell a whole ring behind; output resumes here: clear the screen


class ExitFrame(_Frame):
    type: Literal["exit"] = "exit"
    session_id: SessionId
    exit_code: int | None  # None when a signal ended it
    signal: int | None
    reason: ExitReason


class ErrorFrame(_Frame):
    type: Literal["error"] = "error"
    request_id: RequestId | None = None
    session_id: SessionId | None = None
    code: ErrorCode
    message: str


ServerFrame = Annotated[
    CreatedFrame
    | AttachedFrame
    | DetachedFrame
    | RenamedFrame
    | ResizedFrame
    | SessionsFrame
    | ResetFrame
    | ExitFrame
    | ErrorFrame,
    Field(discriminator="type"),
]

CLIENT_FRAMES: TypeAdapter[ClientFrame] = TypeAdapter(ClientFrame)
SERVER_FRAMES: TypeAdapter[ServerFrame] = TypeAdapter(ServerFrame)


class FrameError(ValueError):
    """A frame from the client that cannot be understood; the message says why."""


def parse_client_frame(text: str | bytes) -> ClientFrame:
    """Validate one JSON text frame from a client."""
    try:
        return CLIENT_FRAMES.validate_json(text)
    except ValidationError as exc:
        raise FrameError(_describe(exc)) from None


def _describe(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors(include_url=False)[:3]:
        where = ".".join(str(part) for part in error["loc"]) or "frame"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


def output_header(session_id: str) -> bytes:
    """The constant part of a session's output frames (everything before the offset)."""
    raw = session_id.encode("ascii")
    return bytes((OUTPUT_FRAME, len(raw))) + raw


def encode_output(session_id: str, offset: int, data: bytes) -> bytes:
    """An output frame: `data` is the session's bytes starting at `offset`."""
    return b"".join((output_header(session_id), _OFFSET.pack(offset), data))


def decode_output(frame: bytes) -> tuple[str, int, bytes]:
    """(session_id, offset, data) of an output frame."""
    session_id, rest = _split_header(frame, OUTPUT_FRAME)
    if len(rest) < _OFFSET.size:
        raise FrameError("output frame shorter than its 8-byte offset")
    (offset,) = _OFFSET.unpack_from(rest)
    return session_id, offset, bytes(rest[_OFFSET.size :])


def encode_input(session_id: str, data: bytes) -> bytes:
    """An input frame: `data` goes to the session's shell as typed."""
    raw = session_id.encode("ascii")
    return b"".join((bytes((INPUT_FRAME, len(raw))), raw, data))


def decode_input(frame: bytes) -> tuple[str, bytes]:
    """(session_id, data) of an input frame from a client; FrameError when malformed."""
    session_id, rest = _split_header(frame, INPUT_FRAME)
    return session_id, bytes(rest)


def _split_header(frame: bytes, kind: int) -> tuple[str, memoryview]:
    if len(frame) < 2:
        raise FrameError("binary frame shorter than its 2-byte header")
    if frame[0] != kind:
        raise FrameError(f"binary frame kind {frame[0]:#04x} where {kind:#04x} was expected")
    id_len = frame[1]
    raw_id = bytes(frame[2 : 2 + id_len])
    if id_len == 0 or len(raw_id) < id_len:
        raise FrameError("binary frame session id is empty or cut short")
    try:
        session_id = raw_id.decode("ascii")
    except UnicodeDecodeError:
        raise FrameError("binary frame session id is not ASCII") from None
    if id_len > MAX_ID_CHARS or not all(c.isalnum() or c in "_-" for c in session_id):
        raise FrameError("binary frame session id has characters outside [A-Za-z0-9_-]")
    return session_id, memoryview(frame)[2 + id_len :]
