"""What a test that runs the real Claude Code adapter needs: the container tools that hold it
(a failure saying how to install them, never a skip) and a scripted model API to answer it.

    with model_for_the_adapter() as model:   # tests/fakes/anthropic.py, any key accepted
        model.script(Turn([text("hello")]))
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from agent.config import CHECKOUT_CONTAINER_TOOLS
from agent.sessions.tools import installed
from tests.fakes.anthropic import ScriptedModel


def require_container_tools() -> None:
    if not installed(CHECKOUT_CONTAINER_TOOLS):
        pytest.fail("tools/container is not installed: run scripts/setup")


@contextmanager
def model_for_the_adapter() -> Iterator[ScriptedModel]:
    require_container_tools()
    with ScriptedModel() as scripted:
        yield scripted
