"""Which local repositories a user may clone (devtools/local_repositories.py), on a real
filesystem with real git: symbolic links resolved before the check, a `.git` file and
object alternates that lead out of the roots refused, and one answer (None) for a path
that is missing, outside the roots or not a repository."""

from pathlib import Path

from devtools.local_repositories import confined_repository
from tests.fixtures.repos import git, make_repo


def test_a_repository_inside_the_roots_is_allowed_and_resolved(tmp_path: Path) -> None:
    root = tmp_path / "bob"
    repo = make_repo(root, "mine")
    assert confined_repository(str(repo), [str(root)]) == str(repo)
    (root / "shortcut").symlink_to(repo)
    assert confined_repository(str(root / "shortcut"), [str(root)]) == str(repo)
    # A root given through a symlink still holds what is really inside it.
    (tmp_path / "bob-link").symlink_to(root)
    assert confined_repository(str(repo), [str(tmp_path / "bob-link")]) == str(repo)
    bare = tmp_path / "bob" / "bare.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(repo), str(bare))
    assert confined_repository(str(bare), [str(root)]) == str(bare)


def test_the_operator_may_name_any_repository_but_not_a_missing_one(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "anywhere")
    assert confined_repository(str(repo), None) == str(repo)
    assert confined_repository(str(tmp_path / "missing"), None) is None
    assert confined_repository(str(tmp_path), None) is None  # not a repository


def test_every_way_out_of_the_roots_gets_the_same_none(tmp_path: Path) -> None:
    alice, bob = tmp_path / "alice", tmp_path / "bob"
    theirs = make_repo(alice, "secret")
    make_repo(bob, "mine")
    roots = [str(bob)]
    # Another user's repository, by its path and through a symlink in bob's own root.
    (bob / "link").symlink_to(theirs)
    # A `.git` file pointing at alice's git directory.
    (bob / "gitfile").mkdir()
    (bob / "gitfile" / ".git").write_text(f"gitdir: {theirs / '.git'}\n")
    # A repository of bob's whose objects come from alice's.
    borrowed = make_repo(bob, "borrowed")
    alternates = borrowed / ".git" / "objects" / "info" / "alternates"
    alternates.write_text(f"{theirs / '.git' / 'objects'}\n")
    # A symlink loop, a missing path, a file, a directory that is no repository, `..`.
    (bob / "loop").symlink_to(bob / "loop")
    (bob / "file").write_text("x")
    (bob / "plain").mkdir()
    cases = [
        theirs,
        bob / "link",
        bob / "gitfile",
        borrowed,
        bob / "loop",
        bob / "missing",
        bob / "file",
        bob / "plain",
        Path(f"{bob}/../alice/secret"),
        Path("/etc"),
    ]
    for case in cases:
        assert confined_repository(str(case), roots) is None, case
    assert confined_repository(str(bob / "mine"), []) is None  # no roots: nothing


def test_an_unreadable_git_file_is_refused_like_the_rest(tmp_path: Path) -> None:
    bob = tmp_path / "bob"
    (bob / "odd").mkdir(parents=True)
    (bob / "odd" / ".git").write_bytes(b"\xff\xfe not text")
    assert confined_repository(str(bob / "odd"), [str(bob)]) is None
    (bob / "odd" / ".git").write_text("nonsense\n")
    assert confined_repository(str(bob / "odd"), [str(bob)]) is None
