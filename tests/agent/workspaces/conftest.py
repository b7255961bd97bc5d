"""The loopback GitHub and its served `dana/app`, for the agent's git tests."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent.workspaces.git_support import served_repository
from tests.e2e.git_server import GitServer
from tests.fakes.github import FakeGitHub


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub() as fake:
        yield fake


@pytest.fixture
def served(github: FakeGitHub, tmp_path: Path) -> Iterator[tuple[GitServer, str]]:
    with served_repository(github, tmp_path) as repository:
        yield repository
