"""Rebuild, as a user meets it: a repository whose postCreateCommand fails ends in error
with no container left running; after the fix is committed, Rebuild clones it afresh and
reruns the lifecycle, and Start of a failed workspace does the same (it never reruns the
old command from a stale clone). Real edge, local node, Docker Engine and base image."""

import json
import subprocess
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.fixtures.repos import git, make_repo
from tests.support.edge import running_edge, signed_in
from tests.worker.workspaces.test_workspaces_api import (
    BASE_IMAGE,
    containers,
    kill_agents,
    remove_containers,
    settled,
)


def devcontainer(post_create: str) -> dict[str, Any]:
    return {"image": BASE_IMAGE, "postCreateCommand": post_create}


def commit_devcontainer(repo: Path, post_create: str) -> None:
    (repo / ".devcontainer" / "devcontainer.json").write_text(json.dumps(devcontainer(post_create)))
    git(repo, "commit", "--quiet", "--all", "--message", f"postCreateCommand: {post_create}")


def has_file(workspace: dict[str, Any], name: str) -> bool:
    folder = workspace["remote_folder"]
    probe = ["docker", "exec", workspace["container_id"], "test", "-f", f"{folder}/{name}"]
    return subprocess.run(probe, capture_output=True).returncode == 0


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("rebuild")
    made: list[str] = []
    try:
        with running_edge(root / ".sam") as edge:
            alice = signed_in(edge, "alice", timeout_seconds=60)
            yield SimpleNamespace(edge=edge, root=root, alice=alice, made=made)
            for workspace_id in made:
                alice.delete(f"/api/workspaces/{workspace_id}")
            alice.close()
    finally:
        remove_containers(made)
        kill_agents(root / ".sam")


def failed_workspace(world: SimpleNamespace, name: str) -> tuple[Path, dict[str, Any]]:
    repo = make_repo(world.root / "repos", name, devcontainer=devcontainer("exit 3"))
    made = world.alice.post("/api/workspaces", json={"repository": str(repo), "provider": "local"})
    assert made.status_code == 202, made.text
    world.made.append(made.json()["id"])
    failed = settled(world.alice, made.json()["id"], ("running", "error"))
    assert failed["status"] == "error"
    assert "postCreateCommand" in failed["error_message"], failed["error_message"]
    return repo, failed


def test_a_failed_post_create_leaves_no_container_and_rebuild_takes_the_fix(
    world: SimpleNamespace,
) -> None:
    repo, failed = failed_workspace(world, "broken")
    assert containers(failed["id"]) == [], "no half-made container is left behind"
    client: httpx.Client = world.alice

    commit_devcontainer(repo, "touch fixed-by-rebuild")
    rebuilt = client.post(f"/api/workspaces/{failed['id']}/rebuild")
    assert rebuilt.status_code == 202, rebuilt.text
    assert rebuilt.json()["status"] == "creating"
    again = client.post(f"/api/workspaces/{failed['id']}/rebuild")
    assert again.status_code == 409, "one rebuild at a time"
    assert "wait until it is running, stopped or failed" in again.json()["message"].lower()
    running = settled(client, failed["id"], ("running", "error"))
    assert running["status"] == "running", running["error_message"]
    assert has_file(running, "fixed-by-rebuild"), "the lifecycle ran on the new commit"
    log = client.get(f"/api/workspaces/{failed['id']}/boot-log").json()["entries"]
    steps = [(entry["step"], entry["status"]) for entry in log]
    assert steps.count(("clone", "succeeded")) == 2, "the repository was fetched again"

    # A running workspace can be rebuilt too: a new commit, a new container.
    before = [line.split()[0] for line in containers(failed["id"])]
    commit_devcontainer(repo, "touch second-rebuild")
    assert client.post(f"/api/workspaces/{failed['id']}/rebuild").status_code == 202
    running = settled(client, failed["id"], ("running", "error"))
    assert running["status"] == "running", running["error_message"]
    assert has_file(running, "second-rebuild")
    after = [line.split()[0] for line in containers(failed["id"])]
    assert len(after) == 1 and after != before


def test_start_of_a_failed_workspace_rebuilds_from_the_fixed_repository(
    world: SimpleNamespace,
) -> None:
    repo, failed = failed_workspace(world, "broken-then-started")
    commit_devcontainer(repo, "touch fixed-before-start")
    started = world.alice.post(f"/api/workspaces/{failed['id']}/restart")
    assert started.status_code == 202, started.text
    running = settled(world.alice, failed["id"], ("running", "error"))
    assert running["status"] == "running", running["error_message"]
    assert has_file(running, "fixed-before-start")


def test_rebuild_is_the_owner_s_only(world: SimpleNamespace) -> None:
    with closing(signed_in(world.edge, "mallory")) as mallory:
        for workspace_id in world.made:
            refused = mallory.post(f"/api/workspaces/{workspace_id}/rebuild")
            assert refused.status_code == 404
            assert refused.json()["error"] == "workspace_not_found"
