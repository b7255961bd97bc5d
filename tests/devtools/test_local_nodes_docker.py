"""A local node's backend is chosen out loud: an engine too slow to answer `docker info`
refuses the node instead of running its workspaces unisolated on the host."""

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.local_nodes import LocalNodes, local_nodes_ca
from twin.http import Request


@pytest.fixture
def stalled_engine() -> Iterator[str]:
    """A loopback "Docker Engine" that accepts connections and never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"tcp://127.0.0.1:{listener.getsockname()[1]}"


async def test_a_slow_engine_refuses_the_node_and_says_what_to_do(
    tmp_path: Path, stalled_engine: str, monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    monkeypatch.setenv("DOCKER_HOST", stalled_engine)
    launcher = LocalNodes(tmp_path / "nodes", env=None, ca=local_nodes_ca(tmp_path))
    body = {
        "node_id": "n-slow-docker",
        "control_plane_url": "http://127.0.0.1:9",
        "bootstrap_token": "unused",
    }
    request = Request("http://local-nodes/nodes", method="POST", body=json.dumps(body))
    answer = await asyncio.wait_for(launcher.fetch(request), 60)
    assert answer.status == 503
    refused = json.loads(await answer.text())
    assert refused["error"] == "docker_not_answering"
    assert "scripts/docker-engine" in refused["message"]
    assert not (tmp_path / "nodes" / "n-slow-docker").exists()
    assert "local_nodes.docker_slow" in caplog.text
    assert "backend=host" not in caplog.text
