"""Repository and branch validation, and `git clone` without a shell.

Everything a user sends is checked here before any command runs: a repository is an
https URL, a git/ssh URL, or an absolute path to a local git repository; a branch follows
`git check-ref-format --branch`, never starts with `-`, and carries no shell
metacharacters. The clone itself passes its positionals after `--` and refuses the `ext::`
transport, so even a value that slipped through could not become an option or a command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from agent.errors import CloneError, InvalidWorkspaceSpec
from agent.process import CommandResult, child_env, run_command, stderr_tail

MAX_REPOSITORY_CHARS = 2048
MAX_BRANCH_CHARS = 255
CLONE_TIMEOUT_SECONDS = 600.0
# Plain http only to this machine, e.g. a git server a test or a developer runs on loopback.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
REMOTE_SCHEMES = ("https", "http", "git", "ssh")

# Characters a shell or git's option parser would give meaning to. None of them is needed
# in a repository URL or a branch name that SAM accepts.
SHELL_METACHARACTERS = frozenset(";&|$`()<>\\'\"!*?{}[]#\n\r\t ")
# What `git check-ref-format` refuses in a ref on top of those.
REF_FORBIDDEN = frozenset("~^:")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_URL_PATH = re.compile(r"^/[A-Za-z0-9._~%+@:/=,-]*$")
_USER = re.compile(r"^[A-Za-z0-9._%+-]+$")
# scp-like ssh: user@host:path (path not starting with '-' or '/').
_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/-].*)$")
_SCP_PATH = re.compile(r"^[A-Za-z0-9._~%+@/-]+$")
_LOCAL_PATH = re.compile(r"^/[A-Za-z0-9._~%+@:/=,-]*$")
# git check-ref-format: no component starts with '.' or ends with '.lock'.
_BAD_COMPONENT = re.compile(r"(^|/)\.|\.lock(/|$)")


@dataclass(frozen=True)
class RepositorySource:
    value: str
    kind: str  # "url" or "local"

    @property
    def display(self) -> str:
        """The repository for logs and boot-log messages: credentials in a URL hidden."""
        if self.kind != "url" or "://" not in self.value:
            return self.value
        parts = urlsplit(self.value)
        if parts.username is None:
            return self.value
        host = parts.hostname or ""
        netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
        return parts._replace(netloc=netloc).geturl()

    @property
    def name(self) -> str:
        """A safe directory name for the clone: the repository's last path segment."""
        tail = re.split(r"[/:]", self.value.rstrip("/"))[-1]
        tail = tail.removesuffix(".git")
        safe = re.sub(r"[^A-Za-z0-9._-]", "-", tail).strip(".-")
        return safe[:64] or "repository"


def _refuse(field: str, problem: str) -> InvalidWorkspaceSpec:
    return InvalidWorkspaceSpec(field, problem)


def _common_checks(field: str, value: object, max_chars: int) -> str:
    if not isinstance(value, str) or not value:
        raise _refuse(field, "is required and must be a non-empty string")
    if len(value) > max_chars:
        raise _refuse(field, f"is longer than {max_chars} characters")
    if value.startswith("-"):
        raise _refuse(field, f"{value[:40]!r} starts with '-' and could be read as an option")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise _refuse(field, "contains control characters (newlines, tabs, ...)")
    bad = sorted({char for char in value if char in SHELL_METACHARACTERS})
    if bad:
        shown = " ".join(repr(char) for char in bad)
        raise _refuse(field, f"contains characters that are not allowed: {shown}")
    return value


def validate_repository(value: object) -> RepositorySource:
    """Accept an https/git/ssh URL or an absolute path to a local git repository."""
    field = "repository"
    text = _common_checks(field, value, MAX_REPOSITORY_CHARS)
    if text.startswith("/"):
        return RepositorySource(_validate_local(field, text), "local")
    if "://" not in text:
        match = _SCP_LIKE.match(text)
        if match and _HOST.match(match["host"]) and _SCP_PATH.match(match["path"]):
            return RepositorySource(text, "url")
        raise _refuse(
            field,
            f"{text[:80]!r} is not an https://, git://, ssh:// or user@host:path URL, "
            "nor an absolute path to a local git repository",
        )
    parts = urlsplit(text)
    if parts.scheme not in REMOTE_SCHEMES:
        raise _refuse(field, f"scheme {parts.scheme!r} is not allowed; use https, git or ssh")
    host = parts.hostname or ""
    if not _HOST.match(host):
        raise _refuse(field, f"{text[:80]!r} has no valid host name")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise _refuse(field, "plain http is only allowed to localhost; use https")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise _refuse(field, f"{text[:80]!r} has an invalid port") from None
    if parts.username is not None and not _USER.match(parts.username):
        raise _refuse(field, "the user name in the URL has characters that are not allowed")
    if (
        parts.query
        or parts.fragment
        or not _URL_PATH.match(parts.path or "/")
        or parts.path
        in (
            "",
            "/",
        )
    ):
        raise _refuse(field, f"{text[:80]!r} needs a repository path (and no query)")
    return RepositorySource(text, "url")


def _validate_local(field: str, text: str) -> str:
    if not _LOCAL_PATH.match(text) or "/../" in f"{text}/" or "/./" in f"{text}/":
        raise _refuse(field, f"{text[:80]!r} is not a plain absolute path")
    path = Path(text)
    if not path.is_dir():
        raise _refuse(field, f"{text[:80]!r} does not exist or is not a directory")
    is_worktree = (path / ".git").exists()
    is_bare = (path / "HEAD").is_file() and (path / "objects").is_dir()
    if not (is_worktree or is_bare):
        raise _refuse(field, f"{text[:80]!r} is not a git repository (no .git, not bare)")
    return text


def validate_branch(value: object) -> str | None:
    """Accept None (the repository's default branch) or a valid branch name."""
    if value is None:
        return None
    field = "branch"
    text = _common_checks(field, value, MAX_BRANCH_CHARS)
    problem = None
    if text == "@" or "@{" in text:
        problem = "contains '@{' or is '@'"
    elif ".." in text or "//" in text:
        problem = "contains '..' or '//'"
    elif text.endswith(("/", ".")) or text.startswith("/"):
        problem = "starts with '/' or ends with '/' or '.'"
    elif _BAD_COMPONENT.search(text):
        problem = "has a component starting with '.' or ending with '.lock'"
    elif text == "HEAD":
        problem = "HEAD is not a branch"
    elif any(char in REF_FORBIDDEN for char in text):
        problem = "contains '~', '^' or ':'"
    if problem:
        raise _refuse(field, f"{text[:80]!r} is not a valid branch name: {problem}")
    return text


def clone_argv(source: RepositorySource, branch: str | None, destination: Path) -> list[str]:
    argv = ["git", "-c", "protocol.ext.allow=never", "clone", "--no-recurse-submodules"]
    if branch is not None:
        argv += ["--branch", branch]
    return [*argv, "--", source.value, str(destination)]


def git_env() -> dict[str, str]:
    """The child environment with every git prompt turned off: a clone that needs
    credentials fails at once instead of waiting for a terminal that is not there."""
    return child_env(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="/bin/false",
        SSH_ASKPASS="/bin/false",
        GIT_SSH_COMMAND="ssh -o BatchMode=yes",
    )


async def clone(
    source: RepositorySource,
    branch: str | None,
    destination: Path,
    *,
    timeout_seconds: float = CLONE_TIMEOUT_SECONDS,
) -> CommandResult:
    """Clone into `destination` (which must not exist yet); raise CloneError on failure."""
    assert not destination.exists(), f"clone destination {destination} exists"
    result = await run_command(
        clone_argv(source, branch, destination),
        timeout_seconds=timeout_seconds,
        env=git_env(),
    )
    if result.timed_out:
        raise CloneError(
            f"git clone did not finish within {timeout_seconds:.0f} s",
            step="clone",
            detail=stderr_tail(result.stderr),
            hint="check that the repository is reachable from the node and not huge",
        )
    if result.returncode != 0:
        raise CloneError(
            f"git clone failed with exit code {result.returncode}",
            step="clone",
            detail=stderr_tail(result.stderr),
            hint="check the repository URL, the branch name and the node's access to it",
        )
    return result
