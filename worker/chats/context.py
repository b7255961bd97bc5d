"""The previous conversation, for the agent of a fresh run of an old chat.

A chat whose workspace is gone keeps its history in ProjectData; a follow-up starts a new
run whose agent knows nothing of it. Its first prompt therefore carries a transcript of the
chat's user and assistant text (no tool calls, thoughts or plans), newest last, bounded by
CONTEXT_MAX_CHARS: when longer, the oldest turns are left out, and the transcript says so.

    transcript(messages, exclude_id="prompt:p…") -> str | None   (None: nothing to carry)
    first_prompt(context, prompt) -> str                         what the agent is sent
"""

from wire.agent_session import MAX_PROMPT_CHARS
from wire.chat import ChatMessage

# A quarter of the largest prompt: room for the new message and a little for the agent.
CONTEXT_MAX_CHARS = MAX_PROMPT_CHARS // 4

HEADER = (
    "This conversation continues an earlier one, whose workspace no longer exists (files "
    "changed there may be gone; check the repository). The earlier conversation:"
)
LEFT_OUT = "[the earliest part of the conversation is left out]"
FOOTER = "The user's new message follows."


def transcript(messages: list[ChatMessage], exclude_id: str | None = None) -> str | None:
    turns: list[tuple[str, str]] = []  # (speaker, text); an agent's chunks joined into one
    for message in messages:
        if message.id == exclude_id:
            continue
        speaker, text = _spoken(message)
        if not text:
            continue
        if turns and turns[-1][0] == speaker == "Assistant":
            turns[-1] = (speaker, turns[-1][1] + text)
        else:
            turns.append((speaker, text))
    if not turns:
        return None
    lines: list[str] = []
    used = 0
    for speaker, text in reversed(turns):
        line = f"{speaker}: {text.strip()}"
        if used + len(line) > CONTEXT_MAX_CHARS:
            if not lines:  # the newest turn alone is too long: keep its end
                lines.append(f"{speaker}: …{text.strip()[-(CONTEXT_MAX_CHARS - 20) :]}")
            lines.append(LEFT_OUT)
            break
        lines.append(line)
        used += len(line) + 2
    return "\n\n".join([HEADER, *reversed(lines), FOOTER])


def first_prompt(context: str | None, prompt: str) -> str:
    """The context, then the prompt; the prompt alone when both would be over the agent's
    limit (the user's own words always go)."""
    combined = prompt if context is None else f"{context}\n\n---\n\n{prompt}"
    return combined if len(combined) <= MAX_PROMPT_CHARS else prompt


def _spoken(message: ChatMessage) -> tuple[str, str]:
    frame = message.frame
    if frame.get("type") == "prompt":
        return "User", str(frame.get("text") or "")
    if frame.get("type") == "update":
        update = frame.get("update") or {}
        content = update.get("content") or {}
        if update.get("sessionUpdate") == "agent_message_chunk" and content.get("type") == "text":
            return "Assistant", str(content.get("text") or "")
    return "", ""
