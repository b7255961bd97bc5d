"""The Agent tab's prompt box stops where the agent's routes do (wire.agent_session)."""

import re
from pathlib import Path

from wire.agent_session import MAX_PROMPT_CHARS

PROTOCOL = Path(__file__).resolve().parents[2] / "pages" / "src" / "agent" / "protocol.ts"


def test_the_pages_prompt_limit_is_the_wires() -> None:
    declared = re.search(r"export const MAX_PROMPT_CHARS = ([0-9_]+);", PROTOCOL.read_text())
    assert declared, f"{PROTOCOL} declares no MAX_PROMPT_CHARS"
    assert int(declared.group(1).replace("_", "")) == MAX_PROMPT_CHARS
