"""The rules for a repository URL/path and a branch name, shared by both sides.

Both the control plane (worker/workspaces/spec.py, before any row or node exists) and the
agent (agent/workspaces/repos.py, again on the node before `git clone`) call these checks, so
the two
cannot drift apart. A repository is an https/http(loopback)/git/ssh URL, a scp-like
`user@host:path`, or a plain absolute path; a branch follows
`git check-ref-format --branch`, never starts with `-`, and carries no shell metacharacters.

Pure on purpose: stdlib only and nothing done at import time, because the Worker is bundled
for Cloudflare without agent/ and the agent imports this module from the project wheel.
A broken rule raises `RuleBroken` naming the rule; each caller turns it into its own error
type, starting from `MESSAGES` and overriding the wording where it differs.
"""

import re
from typing import Any
from urllib.parse import urlsplit

MAX_REPOSITORY_CHARS = 2048
MAX_BRANCH_CHARS = 255
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

# The wording of each rule; fields: {text} (the value, quoted, at most 80 characters),
# {short} (the same, at most 40), {max_chars}, {shown}, {scheme}, {problem}.
MESSAGES = {
    "required": "is required and must be a non-empty string",
    "too_long": "is longer than {max_chars} characters",
    "option": "starts with '-' and could be read as an option",
    "control": "contains control characters (newlines, tabs, ...)",
    "characters": "contains characters that are not allowed: {shown}",
    "local_form": "{text} is not a plain absolute path",
    "not_url": "{text} is not an https://, git://, ssh:// or user@host:path URL",
    "scheme": "scheme {scheme} is not allowed; use https",
    "host": "{text} has no valid host name",
    "http": "uses plain http, which is only allowed to localhost",
    "port": "{text} has an invalid port",
    "user": "has a user name with characters that are not allowed",
    "path": "{text} needs a plain repository path",
    "no_path": "{text} names no repository",
    "branch": "{text} is not a valid branch name: {problem}",
}


class RuleBroken(ValueError):
    """`rule` (a key of MESSAGES) refused `value`; `message(templates)` words it."""

    def __init__(self, rule: str, value: object = "", **fields: Any) -> None:
        super().__init__(rule)
        self.rule = rule
        text = value if isinstance(value, str) else ""
        self.fields = {"text": repr(text[:80]), "short": repr(text[:40]), **fields}

    def message(self, templates: dict[str, str]) -> str:
        return templates[self.rule].format(**self.fields)


def check_common(value: object, max_chars: int) -> str:
    """What both a repository and a branch must be: a short plain non-option string."""
    if not isinstance(value, str) or not value:
        raise RuleBroken("required")
    if len(value) > max_chars:
        raise RuleBroken("too_long", value, max_chars=max_chars)
    if value.startswith("-"):
        raise RuleBroken("option", value)
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in value):
        raise RuleBroken("control", value)
    bad = sorted({char for char in value if char in SHELL_METACHARACTERS})
    if bad:
        raise RuleBroken("characters", value, shown=" ".join(repr(char) for char in bad))
    return value


def check_local_form(text: str) -> str:
    """The form of a local path (existence is for whoever has the filesystem)."""
    if not _LOCAL_PATH.match(text) or "/../" in f"{text}/" or "/./" in f"{text}/":
        raise RuleBroken("local_form", text)
    return text


def check_remote(text: str) -> str:
    """A URL with a scheme, or scp-like `user@host:path` (after `check_common`)."""
    if "://" not in text:
        match = _SCP_LIKE.match(text)
        if match and _HOST.match(match["host"]) and _SCP_PATH.match(match["path"]):
            return text
        raise RuleBroken("not_url", text)
    parts = urlsplit(text)
    if parts.scheme not in REMOTE_SCHEMES:
        raise RuleBroken("scheme", text, scheme=repr(parts.scheme))
    host = parts.hostname or ""
    if not _HOST.match(host):
        raise RuleBroken("host", text)
    if parts.scheme == "http" and host not in LOOPBACK_HOSTS:
        raise RuleBroken("http", text)
    try:
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise RuleBroken("port", text) from None
    if parts.username is not None and not _USER.match(parts.username):
        raise RuleBroken("user", text)
    if parts.query or parts.fragment or not _URL_PATH.match(parts.path or "/"):
        raise RuleBroken("path", text)
    if parts.path in ("", "/"):
        raise RuleBroken("no_path", text)
    return text


def check_branch(value: object) -> str:
    """A name `git check-ref-format --branch` accepts (None is the caller's business)."""
    text = check_common(value, MAX_BRANCH_CHARS)
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
        raise RuleBroken("branch", text, problem=problem)
    return text
