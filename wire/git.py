"""Git between the control plane, the node agent and the workspace, declared once
(docs/protocols/agent-api.md, "Git").

    GET  /workspaces/{id}/git               (agent)  → GitState
    POST /workspaces/{id}/git/push          (agent)  GitPush → GitPushResult
    POST /api/workspaces/{id}/git-token     (control plane, node callback token) → GitToken

A push goes to `refs/heads/{branch}` of `remote_url` only, never forced; `branch` is a
plain branch name (no `refs/`, no `..`, no spaces: wire.repo_rules.check_branch). Tokens are
secrets: never in a repr, a log line, argv or a file.
"""

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from wire import repo_rules

MAX_MESSAGE_CHARS = 16 * 1024
MAX_NAME_CHARS = 256
MAX_TOKEN_CHARS = 4096
# Printable ASCII without spaces: a token goes into an HTTP header.
TOKEN_PATTERN = r"^[\x21-\x7e]+$"
SHA_PATTERN = r"^[0-9a-f]{40,64}$"
# GitHub's git endpoint takes an installation token as the password of this user.
GIT_TOKEN_USERNAME = "x-access-token"


def _branch(value: str) -> str:
    if value.startswith("refs/"):
        raise ValueError("give the branch name alone, without refs/")
    try:
        return repo_rules.check_branch(value)
    except repo_rules.RuleBroken as broken:
        raise ValueError(broken.message(repo_rules.MESSAGES)) from None


def _remote(value: str) -> str:
    try:
        text = repo_rules.check_common(value, repo_rules.MAX_REPOSITORY_CHARS)
        return repo_rules.check_remote(text)
    except repo_rules.RuleBroken as broken:
        raise ValueError(broken.message(repo_rules.MESSAGES)) from None


def _message(value: str) -> str:
    if not value.strip():
        raise ValueError("the commit message is empty")
    return value


BranchName = Annotated[str, AfterValidator(_branch)]
Sha = Annotated[str, StringConstraints(pattern=SHA_PATTERN)]
Token = Annotated[
    str, Field(min_length=1, max_length=MAX_TOKEN_CHARS, pattern=TOKEN_PATTERN, repr=False)
]
Name = Annotated[str, StringConstraints(min_length=1, max_length=MAX_NAME_CHARS)]


class GitState(BaseModel):
    """A checkout as git sees it. `branch` None: a detached HEAD; `head` None: no commit
    yet; `unpushed` the commits on no remote branch (None without a commit)."""

    branch: str | None
    head: Sha | None
    dirty: bool
    unpushed: int | None
    upstream: str | None


class GitPush(BaseModel):
    """Commit everything uncommitted (as author_name <author_email>, with `message`), then
    push HEAD to refs/heads/{branch} of remote_url with `token` (contents:write)."""

    model_config = ConfigDict(extra="forbid")

    branch: BranchName
    message: Annotated[
        str, StringConstraints(max_length=MAX_MESSAGE_CHARS), AfterValidator(_message)
    ]
    remote_url: Annotated[str, AfterValidator(_remote)]
    token: Token
    author_name: Name
    author_email: Name


class GitPushResult(BaseModel):
    """`commit` None: nothing to commit and nothing to push (HEAD is already on a remote
    branch). Otherwise the commit now at refs/heads/{branch}; `pushed` True."""

    commit: Sha | None
    branch: str
    pushed: bool


class GitToken(BaseModel):
    """A read-only installation token for the workspace's own repository, for git's
    credential protocol (username/password) until expires_at (seconds since the epoch)."""

    model_config = ConfigDict(extra="ignore")

    username: str = GIT_TOKEN_USERNAME
    password: Token
    expires_at: float
