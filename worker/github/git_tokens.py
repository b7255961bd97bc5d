"""Tokens for git on a workspace's repository: read for the workspace, write for SAM's push.

A repository is a GitHub one when its URL is on the configured GitHub
(`SAM_GITHUB_BASE_URL`/owner/name, with or without `.git`); the installation that reaches
it must be one of the workspace owner's own (worker/github/repositories.installation_of),
so one user's workspace never gets a token through another user's installation. Each
token is narrowed to that one repository and one permission.

    github_repository(config, "https://github.com/dana/app.git")   -> ("dana", "app")
    await read_token(deployment, user_id, url)    contents:read, for the workspace's git
    await write_token(deployment, user_id, url)   contents:write, for the agent's push only
"""

from urllib.parse import urlsplit

from worker.config import Config
from worker.deployment import Deployment
from worker.errors import Conflict, InvalidInput
from worker.github.app_jwt import GitHubAppNotConfigured
from worker.github.repositories import check_names, installation_of
from worker.github.tokens import InstallationToken, installation_token

CONTENTS_READ = {"contents": "read"}
CONTENTS_WRITE = {"contents": "write"}


class NotOnGitHub(Conflict):
    def __init__(self, url: str) -> None:
        super().__init__(
            "repository_not_on_github",
            f"{url} is not a repository on the configured GitHub: SAM has no token for it. "
            "Clone it without one, or use its https URL on GitHub.",
        )


def github_repository(config: Config, url: str) -> tuple[str, str] | None:
    """(owner, name) when `url` names a repository on the configured GitHub, else None."""
    base, given = urlsplit(config.github_base_url), urlsplit(url)
    if (given.scheme, given.netloc.lower()) != (base.scheme, base.netloc.lower()):
        return None
    if given.query or given.fragment:
        return None
    prefix = base.path.rstrip("/")
    if not given.path.startswith(prefix + "/"):
        return None
    parts = given.path[len(prefix) + 1 :].rstrip("/").split("/")
    if len(parts) != 2:
        return None
    owner, name = parts[0], parts[1].removesuffix(".git")
    try:
        check_names(owner, name)
    except InvalidInput:  # not names GitHub would have: not a GitHub repository URL
        return None
    return owner, name


async def read_token(deployment: Deployment, user_id: str, url: str) -> InstallationToken:
    return await _token(deployment, user_id, url, CONTENTS_READ)


async def write_token(deployment: Deployment, user_id: str, url: str) -> InstallationToken:
    return await _token(deployment, user_id, url, CONTENTS_WRITE)


async def _token(
    deployment: Deployment, user_id: str, url: str, permissions: dict[str, str]
) -> InstallationToken:
    if deployment.config.github_app is None:
        raise GitHubAppNotConfigured()
    found = github_repository(deployment.config, url)
    if found is None:
        raise NotOnGitHub(url)
    owner, name = found
    installation_id = await installation_of(deployment, user_id, owner, name)
    return await installation_token(
        deployment, installation_id, repositories=(name,), permissions=permissions
    )
