"""Without a Docker Engine, local workspaces run unisolated on the machine (the host
backend): allowed for one user only, the first to get a node; anyone else is told to
start a Docker Engine. Through the real edge, its launcher and a real agent process."""

from contextlib import closing
from pathlib import Path

from tests.support.edge import running_edge, signed_in
from tests.worker.workspaces.test_workspaces_api import kill_agents


def test_the_host_backend_serves_one_user_only(tmp_path: Path) -> None:
    no_docker = tmp_path / "bin"
    no_docker.mkdir()
    data_dir = tmp_path / ".sam"
    try:
        with (
            running_edge(data_dir, extra_env={"PATH": str(no_docker)}) as edge,
            closing(signed_in(edge, "alice")) as alice,
            closing(signed_in(edge, "bob")) as bob,
        ):
            made = alice.post("/api/nodes", json={"provider": "local"})
            assert made.status_code == 201, made.text
            again = alice.post("/api/nodes", json={"provider": "local"})
            assert again.status_code == 201, "the same user may have more"
            refused = bob.post("/api/nodes", json={"provider": "local"})
            assert refused.status_code == 409, refused.text
            assert refused.json()["error"] == "host_backend_single_user"
            assert "scripts/docker-engine" in refused.json()["message"]
            # The node service keeps the refused node's row, failed; no agent runs for bob.
            assert [n["status"] for n in bob.get("/api/nodes").json()["nodes"]] == ["error"]
            for node in alice.get("/api/nodes").json()["nodes"]:
                assert alice.delete(f"/api/nodes/{node['id']}").status_code == 204
    finally:
        kill_agents(data_dir)
