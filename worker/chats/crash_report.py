"""Why a run's agent session could not start, in the words of its crash report.

The node agent ends a session whose adapter exits at start with a `crashed` frame (exit
code, hint, stderr tail); a chat-linked session's frames reach its chat through the node's
outbox, so the run reads the report there and quotes it in the reason the chat shows.

    await crash_reason(deployment, spec, agent_session_id) -> str | None  (None: not there yet)
"""

from typing import Any

from worker.chats.run import RunSpec
from worker.deployment import Deployment
from worker.projects import chat_data

# A session that crashed at start has written a few frames; its report is among the newest.
RECENT_MESSAGES = 50
TAIL_CHARS = 800  # the end of its stderr that the reason quotes (the chat has all of it)


async def crash_reason(deployment: Deployment, spec: RunSpec, agent_session_id: str) -> str | None:
    recent = await chat_data.messages(
        deployment, spec.project_id, spec.chat_id, None, None, RECENT_MESSAGES
    )
    for message in reversed(recent):
        frame = message["frame"]
        if message["id"].startswith(f"{agent_session_id}:") and frame.get("type") == "crashed":
            return _reason_of(frame)
    return None


def _reason_of(crashed: dict[str, Any]) -> str:
    code = crashed.get("exit_code")
    exited = "" if code is None else f" (it exited with code {code})"
    tail = str(crashed.get("stderr_tail") or "").strip()
    if len(tail) > TAIL_CHARS:
        tail = "…" + tail[-TAIL_CHARS:]
    said = f" Its stderr ends:\n{tail}" if tail else " It wrote nothing on stderr."
    return (
        f"The agent could not start{exited}: {crashed.get('hint')}.{said}\n"
        "Fix the cause, then send your message again."
    )
