from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.persistence import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """The agent's store with one running workspace, ws-1, for the sessions' frames."""
    opened = Store(tmp_path / "agent.sqlite3")
    opened.save_workspace({"id": "ws-1", "repository": "/r", "state": "running"})
    yield opened
    opened.close()
