"""The earlier conversation a fresh run of an old chat starts with (worker/chats/context.py):
the user's and the agent's words only, the agent's chunks joined, newest last, bounded."""

from datetime import UTC, datetime
from typing import Any

from wire.agent_session import MAX_PROMPT_CHARS
from wire.chat import ChatMessage, role_of
from worker.chats.context import CONTEXT_MAX_CHARS, LEFT_OUT, first_prompt, transcript

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def message(seq: int, frame: dict[str, Any], message_id: str | None = None) -> ChatMessage:
    return ChatMessage(
        seq=seq,
        id=message_id or f"s1:{seq}",
        chat_id="c1",
        role=role_of(frame),
        frame=frame,
        truncated=False,
        created_at=NOW,
    )


def said(seq: int, text: str) -> ChatMessage:
    update = {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": text}}
    return message(seq, {"type": "update", "seq": seq, "update": update})


def asked(seq: int, text: str, prompt_id: str) -> ChatMessage:
    frame = {"type": "prompt", "text": text, "prompt_id": prompt_id}
    return message(seq, frame, f"prompt:{prompt_id}")


def test_the_words_of_both_sides_in_order_and_nothing_else() -> None:
    tool = {"sessionUpdate": "tool_call", "toolCallId": "t1", "title": "Run tests"}
    history = [
        asked(1, "Fix the build", "p1"),
        message(2, {"type": "run", "run_id": "r1", "step": "workspace", "status": "started"}),
        said(3, "Looking"),
        message(4, {"type": "update", "seq": 4, "update": tool}),
        said(5, " at it."),
        asked(6, "And now?", "p2"),
    ]
    text = transcript(history, exclude_id="prompt:p2")
    assert text is not None
    lines = text.split("\n\n")
    assert lines[1:-1] == ["User: Fix the build", "Assistant: Looking at it."]
    assert "Run tests" not in text and "And now?" not in text


def test_nothing_said_is_no_context() -> None:
    assert transcript([]) is None
    assert transcript([asked(1, "only this", "p1")], exclude_id="prompt:p1") is None


def test_a_long_conversation_keeps_its_newest_turns_and_says_what_is_left_out() -> None:
    turn = "x" * 1000
    history = [asked(n, f"{n} {turn}", f"p{n}") for n in range(1, 200)]
    text = transcript(history)
    assert text is not None and len(text) <= CONTEXT_MAX_CHARS + 1000
    assert LEFT_OUT in text and "User: 199 " in text and "User: 1 x" not in text


def test_the_users_words_always_go_even_when_context_does_not_fit() -> None:
    prompt = "y" * (MAX_PROMPT_CHARS - 10)
    assert first_prompt("some context", prompt) == prompt
    assert first_prompt("some context", "hi") == "some context\n\n---\n\nhi"
    assert first_prompt(None, "hi") == "hi"


def test_one_turn_longer_than_the_bound_keeps_its_end() -> None:
    text = transcript([said(1, "a" * CONTEXT_MAX_CHARS + "the end")])
    assert text is not None and len(text) < CONTEXT_MAX_CHARS + 1000
    assert LEFT_OUT in text and "the end" in text
