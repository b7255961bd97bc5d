"""Repository and branch validation, and real `git clone` (no shell, `--` separators)."""

import subprocess
from pathlib import Path

import pytest

from agent.errors import CloneError, InvalidWorkspaceSpec
from agent.workspaces.repos import (
    RepositorySource,
    clone,
    clone_argv,
    git_complaint,
    validate_branch,
    validate_repository,
)
from tests.fixtures.repos import git, make_repo


@pytest.mark.parametrize(
    "value",
    [
        "https://github.com/octo/hello.git",
        "https://github.com/octo/hello",
        "https://x-access-token@github.com/octo/hello.git",
        "https://git.example.com:8443/group/sub/project.git",
        "http://127.0.0.1:9418/repo.git",
        "http://localhost/repo.git",
        "git://git.example.com/project.git",
        "ssh://git@github.com/octo/hello.git",
        "git@github.com:octo/hello.git",
    ],
)
def test_accepts_remote_repositories(value: str) -> None:
    assert validate_repository(value) == RepositorySource(value, "url")


@pytest.mark.parametrize(
    ("value", "says"),
    [
        ("--upload-pack=touch /tmp/pwned", "starts with '-'"),
        ("-oProxyCommand=touch /tmp/pwned", "starts with '-'"),
        ("https://github.com/octo/hello.git; rm -rf /", "not allowed"),
        ("https://github.com/$(id)/x.git", "not allowed"),
        ("https://github.com/`id`/x.git", "not allowed"),
        ("https://github.com/octo/x.git\n--upload-pack=x", "control characters"),
        ("https://github.com/octo/x.git|id", "not allowed"),
        ("ext::sh -c touch% /tmp/pwned", "not allowed"),
        ("ext::sh", "is not an https"),
        ("file:///etc", "scheme 'file'"),
        ("ftp://example.com/repo.git", "scheme 'ftp'"),
        ("http://github.com/octo/hello.git", "only allowed to localhost"),
        ("https://github.com", "needs a repository path"),
        ("https://github.com/octo/x.git?upload-pack=x", "not allowed"),
        ("https:///octo/x.git", "no valid host"),
        ("https://-oProxy/x.git", "no valid host"),
        ("git@github.com:-upload/x.git", "is not an https"),
        ("relative/path", "is not an https"),
        ("", "required"),
        ("x" * 3000, "longer than"),
    ],
)
def test_refuses_bad_repositories_naming_the_field(value: str, says: str) -> None:
    with pytest.raises(InvalidWorkspaceSpec) as refused:
        validate_repository(value)
    assert refused.value.field == "repository"
    assert refused.value.message.startswith("repository: ")
    assert says in refused.value.message


def test_display_hides_credentials_in_urls() -> None:
    source = validate_repository("https://x-access-token@github.com:8443/octo/hello.git")
    assert source.display == "https://***@github.com:8443/octo/hello.git"
    plain = validate_repository("https://github.com/octo/hello.git")
    assert plain.display == plain.value


def test_refuses_non_strings() -> None:
    for value in (None, 42, ["https://x/y"]):
        with pytest.raises(InvalidWorkspaceSpec):
            validate_repository(value)


def test_local_paths_must_be_git_repositories(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "local")
    assert validate_repository(str(repo)) == RepositorySource(str(repo), "local")
    bare = tmp_path / "bare.git"
    git(tmp_path, "clone", "--quiet", "--bare", str(repo), str(bare))
    assert validate_repository(str(bare)).kind == "local"

    plain = tmp_path / "plain"
    plain.mkdir()
    for value, says in (
        (str(tmp_path / "missing"), "does not exist"),
        (str(plain), "not a git repository"),
        (f"{repo}/../local", "not a plain absolute path"),
    ):
        with pytest.raises(InvalidWorkspaceSpec, match=says):
            validate_repository(value)


@pytest.mark.parametrize("value", ["main", "feature/login", "release-1.2", "user/x_y", "v2"])
def test_accepts_branches(value: str) -> None:
    assert validate_branch(value) == value


@pytest.mark.parametrize(
    "value",
    [
        "--upload-pack=touch /tmp/pwned",
        "-b",
        "main; rm -rf /",
        "$(id)",
        "`id`",
        "main\nother",
        "a..b",
        "a//b",
        "/main",
        "main/",
        "main.",
        ".hidden",
        "x/.hidden",
        "topic.lock",
        "a@{1}",
        "@",
        "HEAD",
        "a~1",
        "a^",
        "a:b",
        "a b",
        "a*",
        "a?",
        "a[1]",
        "a\\b",
        "",
    ],
)
def test_refuses_bad_branches_naming_the_field(value: str) -> None:
    with pytest.raises(InvalidWorkspaceSpec) as refused:
        validate_branch(value)
    assert refused.value.field == "branch"


def test_no_branch_means_the_default_branch() -> None:
    assert validate_branch(None) is None


def test_refused_branches_are_refused_by_git_or_by_our_stricter_rules(tmp_path: Path) -> None:
    """Everything git itself refuses, we refuse too (a sample checked with the real git)."""
    for value in ("a..b", "a//b", "main.", ".hidden", "topic.lock", "a@{1}", "a~1", "a:b"):
        with pytest.raises(InvalidWorkspaceSpec):
            validate_branch(value)
        result = git_check_ref_format(tmp_path, value)
        assert result != 0, value


def git_check_ref_format(cwd: Path, value: str) -> int:
    return subprocess.run(
        ["git", "check-ref-format", "--branch", value], cwd=cwd, capture_output=True
    ).returncode


def test_clone_argv_puts_positionals_after_a_separator(tmp_path: Path) -> None:
    argv = clone_argv(RepositorySource("https://h/r.git", "url"), "main", tmp_path / "d")
    assert argv[:3] == ["git", "-c", "protocol.ext.allow=never"]
    separator = argv.index("--")
    assert argv[separator + 1 :] == ["https://h/r.git", str(tmp_path / "d")]
    assert argv[argv.index("--branch") + 1] == "main"


async def test_clone_a_local_repository_and_a_branch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "source", files={"a.txt": "A\n"}, branches=("topic",))
    git(repo, "checkout", "--quiet", "topic")
    (repo / "b.txt").write_text("B\n")
    git(repo, "add", "b.txt")
    git(repo, "commit", "--quiet", "-m", "b")

    await clone(validate_repository(str(repo)), None, tmp_path / "default")
    assert (tmp_path / "default" / "a.txt").read_text() == "A\n"

    await clone(validate_repository(str(repo)), "topic", tmp_path / "topic")
    assert (tmp_path / "topic" / "b.txt").exists()
    assert git(tmp_path / "topic", "branch", "--show-current").strip() == "topic"


async def test_clone_of_a_missing_branch_fails_with_stderr_and_a_hint(tmp_path: Path) -> None:
    repo = make_repo(tmp_path, "source")
    with pytest.raises(CloneError) as failed:
        await clone(validate_repository(str(repo)), "nope", tmp_path / "dest")
    assert failed.value.step == "clone"
    assert "nope" in (failed.value.detail or "")
    assert "branch" in failed.value.hint
    assert not (tmp_path / "dest").exists()
    # The summary is git's own reason, not an exit code.
    assert failed.value.message == (
        "git clone failed: fatal: Remote branch nope not found in upstream origin"
    )


def test_git_s_complaint_is_its_last_fatal_line_without_credentials() -> None:
    stderr = (
        "Cloning into 'x'...\n"
        "remote: Repository not found.\n"
        "fatal: repository 'https://alice:s3cret@example.com/x.git/' not found\n"
    )
    assert git_complaint(stderr) == "fatal: repository 'https://***@example.com/x.git/' not found"
    assert git_complaint("warning: something\n") is None
    assert git_complaint("error: " + "x" * 1000) == ("error: " + "x" * 1000)[:300]


async def test_injection_is_inert_even_without_validation(tmp_path: Path) -> None:
    """Defence in depth: values that skipped validation still cannot become options or
    run commands, because of `--` and protocol.ext.allow=never."""
    marker = tmp_path / "pwned"
    for value in (f"--upload-pack=touch {marker}", f"ext::sh -c touch% {marker}"):
        destination = tmp_path / f"dest-{len(value)}"
        with pytest.raises(CloneError):
            await clone(RepositorySource(value, "url"), None, destination)
        assert not marker.exists(), value
