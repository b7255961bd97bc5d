"""Git on a workspace's checkout, as the node agent outside the container: its state, and
the commit-and-push that only SAM can make (wire/git.py, docs/protocols/agent-api.md "Git").

The checkout belongs to the container's user and its `.git` is writable from inside the
container, so its config is not trusted with a token: the commit runs with hooks and
fsmonitor switched off and no token anywhere near it; the push (and the look at the remote
branch) runs from a scratch bare repository of the agent's own that borrows the checkout's
objects (objects/info/alternates), so no config, hook or credential helper of the
checkout's ever sees the write token. The token reaches git only through the environment
of that one process, read by an inline credential helper: never argv, never a file.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from agent.channel import WorkspaceChannel
from agent.errors import GitFailed, PushRejected
from agent.process import CommandResult, child_env, run_command, stderr_tail
from agent.sessions.tools import GIT_CREDENTIAL_HELPER
from agent.workspaces.repos import git_complaint
from wire.git import GIT_TOKEN_USERNAME, GitPush, GitPushResult, GitState

GIT_TIMEOUT_SECONDS = 120.0
PUSH_TIMEOUT_SECONDS = 600.0
TOKEN_VARIABLE = "SAM_GIT_TOKEN"
# git's credential protocol: answer `get` with the token from the environment, and ignore
# `store`/`erase`. The text names the variable only, so argv and config hold no secret.
CREDENTIAL_HELPER = (
    f"!f() {{ test \"$1\" = get && printf 'username=%s\\npassword=%s\\n' "
    f'{GIT_TOKEN_USERNAME} "${TOKEN_VARIABLE}"; }}; f'
)
# Config that outranks the checkout's own (it comes as command-line config): nothing of
# the checkout's runs as the agent.
UNTRUSTED_CHECKOUT_CONFIG = {
    "core.hooksPath": "/dev/null",
    "core.fsmonitor": "false",
    "commit.gpgSign": "false",
    "protocol.ext.allow": "never",
}


def credential_config(url: str) -> dict[str, str]:
    """git config that answers `url`'s server (scheme and host only: a redirect elsewhere
    gets nothing) with the token in TOKEN_VARIABLE of the process's environment."""
    parts = urlsplit(url)
    return {f"credential.{parts.scheme}://{parts.netloc}.helper": CREDENTIAL_HELPER}


def config_env(settings: dict[str, str]) -> dict[str, str]:
    """`settings` as git's command-line config, through the environment (never argv)."""
    environment = {"GIT_CONFIG_COUNT": str(len(settings))}
    for index, (key, value) in enumerate(settings.items()):
        environment[f"GIT_CONFIG_KEY_{index}"] = key
        environment[f"GIT_CONFIG_VALUE_{index}"] = value
    return environment


def channel_git_env(channel: WorkspaceChannel) -> dict[str, str]:
    """What a process in the workspace (an agent session, a terminal shell) needs for its git
    to get the read token over the channel: SAM's credential helper, as command-line config
    through the environment, and the channel's address and token, which the helper asks."""
    return {
        "SAM_CHANNEL_URL": channel.url(),
        "SAM_CHANNEL_TOKEN": channel.token,
        **config_env({"credential.helper": GIT_CREDENTIAL_HELPER}),
    }


def _git_env(checkout: Path, config: dict[str, str], **extra: str) -> dict[str, str]:
    settings = {"safe.directory": str(checkout), **UNTRUSTED_CHECKOUT_CONFIG, **config}
    return child_env(
        GIT_TERMINAL_PROMPT="0",
        GIT_ASKPASS="/bin/false",
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL="/dev/null",
        GIT_OPTIONAL_LOCKS="0",  # a look (status) never rewrites the container user's index
        **config_env(settings),
        **extra,
    )


async def _git(
    checkout: Path,
    *args: str,
    cwd: Path | None = None,
    config: dict[str, str] | None = None,
    timeout_seconds: float = GIT_TIMEOUT_SECONDS,
    check: bool = True,
    **extra: str,
) -> CommandResult:
    result = await run_command(
        ["git", *args],
        cwd=cwd or checkout,
        env=_git_env(checkout, config or {}, **extra),
        timeout_seconds=timeout_seconds,
    )
    if check and (result.timed_out or result.returncode != 0):
        said = git_complaint(result.stderr) or stderr_tail(result.stderr, 3)
        verb = args[0]
        if result.timed_out:
            said = f"did not finish within {timeout_seconds:.0f} s"
        raise GitFailed(f"git {verb} failed: {said}")
    return result


async def state(checkout: Path) -> GitState:
    """The checkout's branch, HEAD, whether anything is uncommitted, what is unpushed."""
    head = await _git(checkout, "rev-parse", "--verify", "-q", "HEAD", check=False)
    sha = _output(head)
    branch = await _git(checkout, "symbolic-ref", "--short", "-q", "HEAD", check=False)
    status = await _git(checkout, "status", "--porcelain", "--untracked-files=all")
    upstream = await _git(
        checkout, "rev-parse", "--abbrev-ref", "--symbolic-full-name", "@{upstream}", check=False
    )
    unpushed = None
    if sha is not None:
        counted = await _git(checkout, "rev-list", "--count", "HEAD", "--not", "--remotes")
        unpushed = int(counted.stdout.strip())
    return GitState(
        branch=_output(branch),
        head=sha,
        dirty=bool(status.stdout.strip()),
        unpushed=unpushed,
        upstream=_output(upstream),
    )


def _output(result: CommandResult) -> str | None:
    """What a query printed; None when it found nothing (a detached HEAD, no upstream)."""
    return (result.stdout.strip() or None) if result.returncode == 0 else None


async def push(checkout: Path, request: GitPush, scratch_root: Path) -> GitPushResult:
    """Commit what is uncommitted, then push HEAD to refs/heads/{branch} only, never forced.
    Pushing what the branch already holds answers the same result again."""
    try:
        return await _commit_and_push(checkout, request, scratch_root)
    finally:
        await asyncio.to_thread(_give_back, checkout)


async def _commit_and_push(checkout: Path, request: GitPush, scratch_root: Path) -> GitPushResult:
    before = await state(checkout)
    committed = before.dirty and await _commit(checkout, request)
    head = (await _git(checkout, "rev-parse", "--verify", "HEAD")).stdout.strip()
    ref = f"refs/heads/{request.branch}"
    with _scratch(checkout, scratch_root) as scratch:
        remote_head = await _remote_head(checkout, scratch, request, ref)
        if remote_head == head:
            await _remember(checkout, request.branch, head)
            return GitPushResult(commit=head, branch=request.branch, pushed=True)
        if not committed and before.unpushed == 0:
            return GitPushResult(commit=None, branch=request.branch, pushed=False)
        await _push(checkout, scratch, request, f"{head}:{ref}")
    await _remember(checkout, request.branch, head)
    return GitPushResult(commit=head, branch=request.branch, pushed=True)


async def _commit(checkout: Path, request: GitPush) -> bool:
    await _git(checkout, "add", "--all")
    staged = await _git(checkout, "diff", "--cached", "--quiet", check=False)
    if staged.returncode == 0:
        return False  # only ignored or already-committed changes
    identity = {
        "GIT_AUTHOR_NAME": request.author_name,
        "GIT_AUTHOR_EMAIL": request.author_email,
        "GIT_COMMITTER_NAME": request.author_name,
        "GIT_COMMITTER_EMAIL": request.author_email,
    }
    await _git(checkout, "commit", "--quiet", "--no-verify", "-m", request.message, **identity)
    return True


async def _remote_head(checkout: Path, scratch: Path, request: GitPush, ref: str) -> str | None:
    listed = await _git(
        checkout,
        "ls-remote",
        "--",
        request.remote_url,
        ref,
        cwd=scratch,
        config=credential_config(request.remote_url),
        **{TOKEN_VARIABLE: request.token},
    )
    for line in listed.stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name == ref:
            return sha
    return None


async def _push(checkout: Path, scratch: Path, request: GitPush, refspec: str) -> None:
    pushed = await _git(
        checkout,
        "push",
        "--no-verify",
        "--porcelain",
        "--",
        request.remote_url,
        refspec,
        cwd=scratch,
        config=credential_config(request.remote_url),
        timeout_seconds=PUSH_TIMEOUT_SECONDS,
        check=False,
        **{TOKEN_VARIABLE: request.token},
    )
    if pushed.returncode == 0:
        return
    said = git_complaint(pushed.stderr) or stderr_tail(pushed.stderr, 3)
    if "[rejected]" in pushed.stdout or "non-fast-forward" in pushed.stderr:
        raise PushRejected(
            f"the branch {request.branch} on the remote holds commits this workspace lacks; "
            "push to a new branch name, or merge that branch into the workspace first"
        )
    raise GitFailed(f"git push to {request.branch} failed: {said}")


async def _remember(checkout: Path, branch: str, head: str) -> None:
    """Record the pushed branch as a remote branch, so the state's `unpushed` counts 0."""
    await _git(checkout, "update-ref", f"refs/remotes/origin/{branch}", head)


@contextlib.contextmanager
def _scratch(checkout: Path, root: Path) -> Iterator[Path]:
    """A bare repository of the agent's that borrows the checkout's objects."""
    root.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = Path(tempfile.mkdtemp(prefix="push-", dir=root))
    try:
        for folder in ("objects/info", "refs"):
            (path / folder).mkdir(parents=True)
        (path / "HEAD").write_text("ref: refs/heads/main\n")
        (path / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = true\n")
        alternates = path / "objects" / "info" / "alternates"
        alternates.write_text(f"{checkout / '.git' / 'objects'}\n")
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _give_back(checkout: Path) -> None:
    """What the agent wrote into .git belongs to the checkout's owner again (the
    container's user must keep committing), when the agent runs as root."""
    if os.geteuid() != 0:
        return
    owner = checkout.stat()
    for folder, directories, files in os.walk(checkout / ".git"):
        for name in [*directories, *files, ""]:
            path = os.path.join(folder, name) if name else folder
            if os.lstat(path).st_uid != owner.st_uid:
                os.lchown(path, owner.st_uid, owner.st_gid)
