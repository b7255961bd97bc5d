"""Project chat: what the node agent, the control plane and the browser agree on, declared once.

A project chat is an agent session whose frames (wire/agent_session.py) are also kept by the
project's `ProjectData` Durable Object, so the conversation outlives its workspace. Three
paths carry them (docs/protocols/project-chat.md):

    node agent outbox ──POST /api/workspaces/{id}/chat-messages (MessageBatch)──▶ ProjectData
    ProjectData ──viewer WebSocket /api/projects/{id}/ws?chat=C&after=N (ViewerFrame)──▶ browser
    browser ──API calls (follow-up, stop, permission answer)──▶ TaskRunner ──▶ node agent

A message is one frame: the agent session's frame as the session's own viewers see it, or one
the control plane adds itself (the user's prompt the moment the API accepts it, a run's
progress). Its `id` makes ingest idempotent: `message_id` names an agent frame by its session
and seq, except a prompt the control plane sent with a `prompt_id`, which is named after that
id, so the agent's echo of a prompt already shown is a duplicate, not a second message.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter

# --- bounds (ProjectData keeps everything below in its SQLite storage) ---------------------

MAX_MESSAGE_BYTES = 64 * 1024  # a larger frame is kept truncated, marked `truncated`
MAX_CHAT_MESSAGES = 20_000  # per chat; later messages are refused with chat_full
MAX_BATCH_MESSAGES = 100  # one ingest call
MAX_BATCH_BYTES = 1024 * 1024  # one ingest call's body
MAX_TOPIC_CHARS = 200
MAX_PAGE_MESSAGES = 500  # one GET of a chat's history

ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
ChatId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
ProjectId = Annotated[str, StringConstraints(pattern=ID_PATTERN)]
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9_:-]{1,160}$"
MessageId = Annotated[str, StringConstraints(pattern=MESSAGE_ID_PATTERN)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MessageRole(StrEnum):
    USER = "user"  # a prompt
    ASSISTANT = "assistant"  # the agent's text
    THINKING = "thinking"  # the agent's thoughts
    TOOL = "tool"  # a tool call, its updates, a permission request and its answer
    PLAN = "plan"  # the agent's plan
    SYSTEM = "system"  # everything else: started, turn ended, crashes, a run's progress


class ChatStatus(StrEnum):
    STARTING = "starting"  # its run is finding a node, making the workspace, starting the agent
    ACTIVE = "active"  # its agent session takes prompts
    STOPPED = "stopped"  # stopped, or its workspace is gone: readable; a follow-up starts anew
    FAILED = "failed"  # its run failed (the last system message says why and what to do)


# --- the agent's side: which sessions are chats, and what they send -------------------------


class ChatLink(_Model):
    """In NewAgentSession: this session's frames also go to the project chat."""

    project_id: ProjectId
    chat_id: ChatId


class OutboxMessage(_Model):
    id: MessageId  # message_id(agent_session_id, frame)
    project_id: ProjectId
    chat_id: ChatId
    frame: dict[str, Any]  # a wire.agent_session.SessionFrame, as its viewers saw it
    created_at: datetime


class MessageBatch(_Model):
    """POST /api/workspaces/{id}/chat-messages (the workspace's node's callback token): only
    chats linked to that workspace accept them."""

    messages: Annotated[list[OutboxMessage], Field(min_length=1, max_length=MAX_BATCH_MESSAGES)]


class IngestResult(_Model):
    accepted: int  # new messages stored
    duplicates: int  # already stored (a retried batch)
    refused: int = 0  # over their chat's MAX_CHAT_MESSAGES: dropped (do not send them again)


def message_id(agent_session_id: str, frame: dict[str, Any]) -> str:
    """The message id of an agent session's frame (see the module's docstring)."""
    if frame.get("type") == "prompt" and frame.get("prompt_id"):
        return f"prompt:{frame['prompt_id']}"
    return f"{agent_session_id}:{frame['seq']}"


_UPDATE_ROLES = {
    "user_message_chunk": MessageRole.USER,
    "agent_message_chunk": MessageRole.ASSISTANT,
    "agent_thought_chunk": MessageRole.THINKING,
    "tool_call": MessageRole.TOOL,
    "tool_call_update": MessageRole.TOOL,
    "plan": MessageRole.PLAN,
}
_FRAME_ROLES = {
    "prompt": MessageRole.USER,
    "permission_request": MessageRole.TOOL,
    "permission_resolved": MessageRole.TOOL,
}


def role_of(frame: dict[str, Any]) -> MessageRole:
    """How a frame shows in a chat (and is counted and searched)."""
    if frame.get("type") == "update":
        kind = (frame.get("update") or {}).get("sessionUpdate")
        return _UPDATE_ROLES.get(kind, MessageRole.SYSTEM)
    return _FRAME_ROLES.get(frame.get("type", ""), MessageRole.SYSTEM)


# --- what ProjectData answers and its viewers receive -----------------------------------------


class ChatMessage(_Model):
    seq: int  # per project: 1, 2, 3, … across all its chats
    id: MessageId
    chat_id: ChatId
    role: MessageRole
    frame: dict[str, Any]  # an agent frame, or one of the control plane's (type prompt/run)
    truncated: bool  # the frame was over MAX_MESSAGE_BYTES: `frame` holds its type and a prefix
    created_at: datetime


class ChatInfo(_Model):
    id: ChatId
    project_id: ProjectId
    topic: str
    status: ChatStatus
    workspace_id: str | None
    agent_session_id: str | None
    run_id: str | None
    message_count: int
    last_seq: int  # the project seq of its newest message (0: none)
    created_at: datetime
    last_activity_at: datetime


class MessageFrame(_Model):
    """To a chat's viewers: one message, in seq order, each exactly once."""

    type: Literal["message"]
    message: ChatMessage


class ChatFrame(_Model):
    """To a chat's viewers and the project's: a chat was created or changed."""

    type: Literal["chat"]
    chat: ChatInfo


class CaughtUpFrame(_Model):
    """Sent once, after the messages a viewer missed (`after=N`): live ones follow."""

    type: Literal["caught_up"]
    last_seq: int


class ChatDeletedFrame(_Model):
    type: Literal["chat_deleted"]
    chat_id: ChatId


class ViewerErrorFrame(_Model):
    type: Literal["error"]
    code: str
    message: str


ViewerFrame = Annotated[
    MessageFrame | ChatFrame | CaughtUpFrame | ChatDeletedFrame | ViewerErrorFrame,
    Field(discriminator="type"),
]
VIEWER_FRAMES: TypeAdapter[Any] = TypeAdapter(ViewerFrame)
