"""git's credentials for a workspace: read tokens for its own repository, asked of the control
plane and kept in the agent's memory only; and the channel service that hands them to the
workspace's credential helper (tools/container/git-credential-sam.mjs).

    POST /git/credential  {"protocol": "https", "host": "github.com"}
        → 200 {"username": "x-access-token", "password": "<read token>"}
        → 404 not_this_repository   (another host: its server never sees the token)
        → 409 no_git_token          (the repository is not one SAM has tokens for)

Mounted on the workspace's channel, which admits only that workspace's own requests (its
network, its channel token) and names it in `request[WORKSPACE_ID]`. A token is reused
until REFRESH_MARGIN_SECONDS before it expires; never written down or logged.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol
from urllib.parse import urlsplit

from aiohttp import web

from agent.channel.listener import WORKSPACE_ID
from agent.errors import BadRequest, NoGitToken, NotFound
from wire.git import GitToken

log = logging.getLogger("agent.git_credentials")

# A token handed out has at least this long left: enough for a fetch or a clone to finish.
REFRESH_MARGIN_SECONDS = 5 * 60
MAX_ATTRIBUTE_CHARS = 512


class GitTokenSource(Protocol):
    async def git_token(self, workspace_id: str) -> GitToken: ...


class GitTokens:
    """Each workspace's read token, minted once and kept until near its expiry."""

    def __init__(self, source: GitTokenSource, clock: Callable[[], float] = time.time) -> None:
        self._source = source
        self._clock = clock
        self._tokens: dict[str, GitToken] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, workspace_id: str) -> GitToken:
        """The workspace's token; raises NoGitToken, or ControlPlaneError when unreachable."""
        async with self._locks.setdefault(workspace_id, asyncio.Lock()):
            kept = self._tokens.get(workspace_id)
            if kept is not None and kept.expires_at - REFRESH_MARGIN_SECONDS > self._clock():
                return kept
            token = await self._source.git_token(workspace_id)
            self._tokens[workspace_id] = token
            log.info("git_token.minted workspace_id=%s", workspace_id)
            return token


TOKENS = web.AppKey("git_tokens", GitTokens)
REPOSITORY_OF = web.AppKey("repository_of", Callable[[str], str | None])


def git_credentials(
    tokens: GitTokens, repository_of: Callable[[str], str | None]
) -> web.Application:
    """The channel service; `repository_of(workspace_id)` is the workspace's repository URL."""
    app = web.Application(client_max_size=16 * 1024)
    app[TOKENS], app[REPOSITORY_OF] = tokens, repository_of
    app.router.add_post("/credential", credential)
    return app


async def credential(request: web.Request) -> web.Response:
    workspace_id = request[WORKSPACE_ID]
    asked = await _attributes(request)
    repository = request.app[REPOSITORY_OF](workspace_id) or ""
    if not _same_server(asked, repository):
        log.warning(
            "git_credentials.refused workspace_id=%s host=%s", workspace_id, asked["host"][:80]
        )
        raise NotFound(
            f"SAM has a token only for this workspace's repository, not for "
            f"{asked['protocol']}://{asked['host']}: use that server's own credentials",
            code="not_this_repository",
        )
    try:
        token = await request.app[TOKENS].get(workspace_id)
    except NoGitToken as exc:
        raise NoGitToken(
            f"SAM has no token for this workspace's repository ({exc.message}); "
            "install the GitHub App on its account to fetch it from here"
        ) from None
    response = web.json_response({"username": token.username, "password": token.password})
    response.headers["Cache-Control"] = "no-store"
    return response


async def _attributes(request: web.Request) -> dict[str, str]:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest("send git's credential attributes as a JSON object") from None
    if not isinstance(body, dict):
        raise BadRequest("send git's credential attributes as a JSON object")
    asked = {}
    for name in ("protocol", "host"):
        value = body.get(name)
        if not isinstance(value, str) or not value or len(value) > MAX_ATTRIBUTE_CHARS:
            raise BadRequest(f"{name}: git's credential attribute is missing or too long")
        asked[name] = value
    return asked


def _same_server(asked: dict[str, str], repository: str) -> bool:
    """The helper asks for the repository's own scheme and host[:port], nothing else."""
    parts = urlsplit(repository)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return False
    host = parts.hostname.lower() + (f":{parts.port}" if parts.port else "")
    return (asked["protocol"], asked["host"].lower()) == (parts.scheme, host)
