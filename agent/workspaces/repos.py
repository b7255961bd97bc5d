"""Repository and branch validation, and `git clone` without a shell.

Everything a user sends is checked here before any command runs, by the rules the control
plane applies too (wire/repo_rules.py, pure, shipped in the agent's wheel): a repository
is an https URL, a git/ssh URL, or an absolute path to a local git repository (which must
exist here and be one); a branch follows `git check-ref-format --branch`, never starts
with `-`, and carries no shell metacharacters. The clone itself passes its positionals
after `--` and refuses the `ext::` transport, so even a value that slipped through could
not become an option or a command.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from agent.errors import CloneError, InvalidWorkspaceSpec
from agent.process import CommandResult, child_env, run_command, stderr_tail
from wire import repo_rules

CLONE_TIMEOUT_SECONDS = 600.0
MAX_COMPLAINT_CHARS = 300
_URL_CREDENTIALS = re.compile(r"([a-z][a-z0-9+.-]*://)[^/@\s]+@", re.IGNORECASE)
# The agent's wording where it differs from the control plane's.
MESSAGES = {
    **repo_rules.MESSAGES,
    "option": "{short} starts with '-' and could be read as an option",
    "not_url": (
        "{text} is not an https://, git://, ssh:// or user@host:path URL, "
        "nor an absolute path to a local git repository"
    ),
    "scheme": "scheme {scheme} is not allowed; use https, git or ssh",
    "http": "plain http is only allowed to localhost; use https",
    "user": "the user name in the URL has characters that are not allowed",
    "path": "{text} needs a repository path (and no query)",
    "no_path": "{text} needs a repository path (and no query)",
}


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


def validate_repository(value: object) -> RepositorySource:
    """Accept an https/git/ssh URL or an absolute path to a local git repository."""
    field = "repository"
    try:
        text = repo_rules.check_common(value, repo_rules.MAX_REPOSITORY_CHARS)
        if text.startswith("/"):
            return RepositorySource(
                _validate_local(field, repo_rules.check_local_form(text)), "local"
            )
        return RepositorySource(repo_rules.check_remote(text), "url")
    except repo_rules.RuleBroken as broken:
        raise _refuse(field, broken.message(MESSAGES)) from None


def _validate_local(field: str, text: str) -> str:
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
    try:
        return repo_rules.check_branch(value)
    except repo_rules.RuleBroken as broken:
        raise _refuse("branch", broken.message(MESSAGES)) from None


def git_complaint(stderr: str) -> str | None:
    """git's own reason, its last `fatal:` (or `error:`) line, for the summary; any
    credentials in a URL it quotes are hidden."""
    lines = [line.strip() for line in stderr.splitlines()]
    said = [line for line in lines if line.startswith(("fatal:", "error:"))]
    if not said:
        return None
    return _URL_CREDENTIALS.sub(r"\1***@", said[-1])[:MAX_COMPLAINT_CHARS]


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
    extra_env: dict[str, str] | None = None,
) -> CommandResult:
    """Clone into `destination` (which must not exist yet); raise CloneError on failure.
    `extra_env`: e.g. a credential helper's config and its token (never argv)."""
    assert not destination.exists(), f"clone destination {destination} exists"
    result = await run_command(
        clone_argv(source, branch, destination),
        timeout_seconds=timeout_seconds,
        env=git_env() | (extra_env or {}),
    )
    if result.timed_out:
        raise CloneError(
            f"git clone did not finish within {timeout_seconds:.0f} s",
            step="clone",
            detail=stderr_tail(result.stderr),
            hint="check that the repository is reachable from the node and not huge",
        )
    if result.returncode != 0:
        said = git_complaint(result.stderr)
        raise CloneError(
            f"git clone failed: {said}" if said else f"git clone failed (exit {result.returncode})",
            step="clone",
            detail=stderr_tail(result.stderr),
            hint="check the repository URL, the branch name and the node's access to it",
        )
    return result
