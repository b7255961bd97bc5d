"""Fixtures for tests whose agent makes real containers on the shared Docker Engine: the
test's own node id, a control-plane double for that node, and a leak check that removes
(and fails on) whatever the test left carrying the node's label, never anything of another
engineer's or test's. A conftest or test module imports the three by name."""

import uuid
from collections.abc import Iterator

import pytest

from agent.workspaces.containers import LABEL_NODE
from tests.support.control_plane import ControlPlaneDouble
from tests.support.docker_objects import remove_labelled


@pytest.fixture
def node_id() -> str:
    return f"test-node-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def control_plane(node_id: str) -> Iterator[ControlPlaneDouble]:
    with ControlPlaneDouble(node_id=node_id) as double:
        yield double


@pytest.fixture(autouse=True)
def leak_check(node_id: str) -> Iterator[None]:
    yield
    left = remove_labelled(f"{LABEL_NODE}={node_id}")
    assert not left, f"left behind (containers, then networks): {left}"
