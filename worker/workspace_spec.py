"""What a user may ask a workspace to be made of: repository, branch, name, provider, size.

Checked here, before any row, node or command exists. The rules are the agent's own
(agent/repos.py: `validate_repository`, `validate_branch`), restated because worker code
is bundled for Cloudflare without agent/ and cannot import it. The agent checks again on
the node (the only place a local path can be looked at); keep the two in step: a value
this module accepts and the agent refuses ends the workspace in `error` instead of a 400.

Differences on purpose: a local path is accepted only for the `local` provider (a cloud
node has no such directory), and only its form is checked here (the Worker has no
filesystem); existence is the agent's check.
"""

import re
from typing import Any
from urllib.parse import urlsplit

from worker.errors import ApiError
from worker.node_model import Provider

MAX_REPOSITORY_CHARS = 2048
MAX_BRANCH_CHARS = 255
MAX_NAME_CHARS = 64
# Plain http only to this machine, e.g. a git server a test or a developer runs on loopback.
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
REMOTE_SCHEMES = ("https", "http", "git", "ssh")
# Characters a shell or git's option parser would give meaning to (agent/repos.py).
SHELL_METACHARACTERS = frozenset(";&|$`()<>\\'\"!*?{}[]#\n\r\t ")
REF_FORBIDDEN = frozenset("~^:")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$")
_URL_PATH = re.compile(r"^/[A-Za-z0-9._~%+@:/=,-]*$")
_USER = re.compile(r"^[A-Za-z0-9._%+-]+$")
_SCP_LIKE = re.compile(r"^(?P<user>[A-Za-z0-9._-]+)@(?P<host>[A-Za-z0-9.-]+):(?P<path>[^/-].*)$")
_SCP_PATH = re.compile(r"^[A-Za-z0-9._~%+@/-]+$")
_LOCAL_PATH = re.compile(r"^/[A-Za-z0-9._~%+@:/=,-]*$")
_BAD_COMPONENT = re.compile(r"(^|/)\.|\.lock(/|$)")
_NAME = re.compile(r"^[^\x00-\x1f\x7f]+$")
# Hetzner server type names (`cx22`) and anything like them (as POST /api/nodes).
_SIZE = re.compile(r"^[a-z0-9][a-z0-9-]{0,31}$")


class InvalidWorkspaceSpec(ApiError):
    def __init__(self, field: str, problem: str) -> None:
        super().__init__(400, "invalid_workspace_spec", f"{field} {problem}.")
        self.field = field


def _common(field: str, value: Any, max_chars: int) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidWorkspaceSpec(field, "is required and must be a non-empty string")
    if len(value) > max_chars:
        raise InvalidWorkspaceSpec(field, f"is longer than {max_chars} characters")
    if value.startswith("-"):
        raise InvalidWorkspaceSpec(field, "starts with '-' and could be read as an option")
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise InvalidWorkspaceSpec(field, "contains control characters (newlines, tabs, ...)")
    bad = sorted({char for char in value if char in SHELL_METACHARACTERS})
    if bad:
        shown = " ".join(repr(char) for char in bad)
        raise InvalidWorkspaceSpec(field, f"contains characters that are not allowed: {shown}")
    return value


def validate_repository(value: Any, provider: Provider) -> str:
    """An https/http(loopback)/git/ssh URL or scp-like `user@host:path`; for the local
    provider also an absolute path to a git repository on this machine."""
    field = "repository"
    text = _common(field, value, MAX_REPOSITORY_CHARS)
    if text.startswith("/"):
        if provider != Provider.LOCAL:
            raise InvalidWorkspaceSpec(
                field, "is a local path, which only the local provider can clone; use a URL"
            )
        if not _LOCAL_PATH.match(text) or "/../" in f"{text}/" or "/./" in f"{text}/":
            raise InvalidWorkspaceSpec(field, f"{text[:80]!r} is not a plain absolute path")
        return text
    if "://" not in text:
        match = _SCP_LIKE.match(text)
        if match and _HOST.match(match["host"]) and _SCP_PATH.match(match["path"]):
            return text
        raise InvalidWorkspaceSpec(
            field,
            f"{text[:80]!r} is not an https://, git://, ssh:// or user@host:path URL"
            + (", nor an absolute path" if provider == Provider.LOCAL else ""),
        )
    parts = urlsplit(text)
    if parts.scheme not in REMOTE_SCHEMES:
        raise InvalidWorkspaceSpec(field, f"scheme {parts.scheme!r} is not allowed; use https")
    host = parts.hostname or ""
    if not _HOST.match(host):
        raise InvalidWorkspaceSpec(field, f"{text[:80]!r} has no valid host name")
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise InvalidWorkspaceSpec(field, "uses plain http, which is only allowed to localhost")
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InvalidWorkspaceSpec(field, f"{text[:80]!r} has an invalid port") from None
    if parts.username is not None and not _USER.match(parts.username):
        raise InvalidWorkspaceSpec(field, "has a user name with characters that are not allowed")
    if parts.query or parts.fragment or not _URL_PATH.match(parts.path or "/"):
        raise InvalidWorkspaceSpec(field, f"{text[:80]!r} needs a plain repository path")
    if parts.path in ("", "/"):
        raise InvalidWorkspaceSpec(field, f"{text[:80]!r} names no repository")
    return text


def validate_branch(value: Any) -> str | None:
    """None (the repository's default branch) or a name `git check-ref-format` accepts."""
    if value is None:
        return None
    field = "branch"
    text = _common(field, value, MAX_BRANCH_CHARS)
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
        raise InvalidWorkspaceSpec(field, f"{text[:80]!r} is not a valid branch name: {problem}")
    return text


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
