"""Local-path repositories confined per user, through the real edge and its node launcher.

alice signs in first, so she is the operator (the admin) and may name any repository on
the machine; bob may name only those under his root of SAM_LOCAL_REPOSITORY_ROOTS
(`<tmp>/roots/{login}`). Every refusal is the same sentence (apart from the path the user
typed), whether the path is another user's, missing, forbidden or not a repository.
"""

from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from types import SimpleNamespace

import httpx
import pytest

from tests.fixtures.repos import make_repo
from tests.support.edge import running_edge, signed_in
from worker.config import Config, ConfigError


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("local-paths")
    roots = f"{root}/roots/{{login}}:{root}/shared"
    with running_edge(root / ".sam", vars={"SAM_LOCAL_REPOSITORY_ROOTS": roots}) as edge:
        alice, bob = signed_in(edge, "alice"), signed_in(edge, "bob")
        yield SimpleNamespace(
            edge=edge,
            root=root,
            alice=alice,
            bob=bob,
            alices=make_repo(root / "home" / "alice", "secret"),
            bobs=make_repo(root / "roots" / "bob", "mine"),
        )
        for client in (alice, bob):
            for workspace in client.get("/api/workspaces").json()["workspaces"]:
                client.delete(f"/api/workspaces/{workspace['id']}")
            client.close()


def create(client: httpx.Client, repository: str | Path) -> httpx.Response:
    return client.post("/api/workspaces", json={"repository": str(repository), "provider": "local"})


def test_another_user_s_path_a_missing_one_and_a_forbidden_one_get_the_same_refusal(
    world: SimpleNamespace,
) -> None:
    bob_root = world.root / "roots" / "bob"
    (bob_root / "alices-link").symlink_to(world.alices)
    (bob_root / "gitfile").mkdir()
    (bob_root / "gitfile" / ".git").write_text(f"gitdir: {world.alices / '.git'}\n")
    cases = [
        world.alices,  # alice's source, named by bob
        bob_root / "alices-link",  # the same through a symlink in bob's own root
        bob_root / "gitfile",  # a .git file pointing at alice's repository
        world.root / "home" / "alice" / "missing",  # missing, outside bob's root
        bob_root / "missing",  # missing, inside it
        world.root / "roots" / "alice",  # another user's root
        Path("/etc"),
        Path("/root/.ssh"),
    ]
    refusals = set()
    for case in cases:
        refused = create(world.bob, case)
        assert refused.status_code == 400, (case, refused.text)
        assert refused.json()["error"] == "invalid_workspace_spec"
        refusals.add(refused.json()["message"].replace(str(case), "<path>"))
    assert refusals == {
        "repository <path> is not a git repository you may use on this machine "
        f"(allowed: under {bob_root}, {world.root}/shared)."
    }
    assert world.bob.get("/api/workspaces").json()["workspaces"] == []
    assert world.bob.get("/api/nodes").json()["nodes"] == [], "no node was started"


def test_bob_may_use_his_own_root_and_the_stored_path_is_resolved(
    world: SimpleNamespace,
) -> None:
    (world.root / "roots" / "bob" / "mine-link").symlink_to(world.bobs)
    made = create(world.bob, world.root / "roots" / "bob" / "mine-link")
    assert made.status_code == 202, made.text
    assert made.json()["repository"] == str(world.bobs)


def test_the_operator_may_name_any_repository_but_not_a_missing_one(
    world: SimpleNamespace,
) -> None:
    made = create(world.alice, world.alices)
    assert made.status_code == 202, made.text
    missing = create(world.alice, world.root / "nowhere")
    assert missing.status_code == 400
    assert missing.json()["message"] == (
        f"repository {world.root / 'nowhere'} is not a git repository here."
    )


def test_without_roots_other_users_are_told_who_can_allow_them(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "anything")
    with (
        running_edge(tmp_path / ".sam") as edge,
        closing(signed_in(edge, "operator")),
        closing(signed_in(edge, "guest")) as guest,
    ):
        refused = create(guest, repo)
    assert refused.status_code == 400
    assert "SAM_LOCAL_REPOSITORY_ROOTS" in refused.json()["message"]


@pytest.mark.parametrize("raw", ["relative/dir", "/srv/../etc", "/srv/{user}", "/srv/./x"])
def test_bad_roots_name_the_var(raw: str) -> None:
    env = SimpleNamespace(SAM_DOMAIN="localhost:8787", SAM_LOCAL_REPOSITORY_ROOTS=raw)
    with pytest.raises(ConfigError, match="SAM_LOCAL_REPOSITORY_ROOTS"):
        Config.from_env(env)


def test_roots_are_parsed_once_into_a_tuple() -> None:
    env = SimpleNamespace(
        SAM_DOMAIN="localhost:8787", SAM_LOCAL_REPOSITORY_ROOTS="/srv/{login}/: /data/repos"
    )
    assert Config.from_env(env).local_repository_roots == ("/srv/{login}", "/data/repos")
