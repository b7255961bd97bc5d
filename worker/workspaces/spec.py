"""What a user may ask a workspace to be made of: repository, branch, name, provider, size.

Checked here, before any row, node or command exists. The repository and branch rules are
wire/repo_rules.py, which the agent (agent/workspaces/repos.py) calls too, on the node (the only
place a local path can be looked at); only the wording of the refusals is this module's.

Differences on purpose: a local path is accepted only for the `local` provider (a cloud
node has no such directory), and only its form is checked here (the Worker has no
filesystem); existence is the agent's check.
"""

import re
from typing import Any

from wire import repo_rules
from wire.repo_rules import MAX_REPOSITORY_CHARS, RuleBroken
from worker.errors import InvalidInput
from worker.nodes.model import Provider

MAX_NAME_CHARS = 64
_NAME = re.compile(r"^[^\x00-\x1f\x7f]+$")
# Hetzner server type names (`cx22`) and anything like them (as POST /api/nodes).
_SIZE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class InvalidWorkspaceSpec(InvalidInput):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__("invalid_workspace_spec", f"{field} {problem}.")
        self.field = field


def _refused(field: str, broken: RuleBroken, *, local_too: bool = False) -> InvalidWorkspaceSpec:
    message = broken.message(repo_rules.MESSAGES)
    if broken.rule == "not_url" and local_too:
        message += ", nor an absolute path"
    return InvalidWorkspaceSpec(field, message)


def validate_repository(value: Any, provider: Provider) -> str:
    """An https/http(loopback)/git/ssh URL or scp-like `user@host:path`; for the local
    provider also an absolute path to a git repository on this machine."""
    field = "repository"
    try:
        text = repo_rules.check_common(value, MAX_REPOSITORY_CHARS)
        if not text.startswith("/"):
            return repo_rules.check_remote(text)
        if provider != Provider.LOCAL:
            raise InvalidWorkspaceSpec(
                field, "is a local path, which only the local provider can clone; use a URL"
            )
        return repo_rules.check_local_form(text)
    except RuleBroken as broken:
        raise _refused(field, broken, local_too=provider == Provider.LOCAL) from None


def validate_branch(value: Any) -> str | None:
    """None (the repository's default branch) or a name `git check-ref-format` accepts."""
    if value is None:
        return None
    try:
        return repo_rules.check_branch(value)
    except RuleBroken as broken:
        raise _refused("branch", broken) from None


def validate_name(value: Any, repository: str) -> str:
    """The display name: given, or the repository's last path segment."""
    if value is None:
        tail = re.split(r"[/:]", repository.rstrip("/"))[-1].removesuffix(".git")
        return (tail or "workspace")[:MAX_NAME_CHARS]
    if not isinstance(value, str) or not value.strip():
        raise InvalidWorkspaceSpec("name", "must be a non-empty string")
    name = value.strip()
    if len(name) > MAX_NAME_CHARS or not _NAME.match(name):
        raise InvalidWorkspaceSpec(
            "name", f"must be at most {MAX_NAME_CHARS} characters, without control characters"
        )
    return name


def validate_size(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _SIZE.match(value):
        raise InvalidWorkspaceSpec("size", "must look like a server type name, e.g. 'cx22'")
    return value


def validate_trusted(value: Any) -> bool:
    """Whether the owner trusts the repository's devcontainer.json: off unless said."""
    if value is None:
        return False
    if not isinstance(value, bool):
        raise InvalidWorkspaceSpec("trusted_devcontainer", "must be true or false")
    return value
