"""What the project picker lists: the repositories the user's installations reach, and a
repository's branches. Both are read with installation tokens narrowed to metadata:read.

    await list_repositories(deployment, user_id)              -> [Repository]
    await list_branches(deployment, user_id, owner, name)     -> [Branch]

A repository counts as the user's only through one of the user's own recorded
installations; any other answers the same NotFound as a repository that does not exist.
"""

import re
from dataclasses import dataclass
from typing import Any

from worker.config import GITHUB_NAME_MAX_CHARS, GITHUB_NAME_PATTERN
from worker.deployment import Deployment
from worker.errors import InvalidInput, NotFound, UpstreamFailed
from worker.github import installations, rest
from worker.github.app_jwt import GitHubAppNotConfigured, app_jwt
from worker.github.tokens import InstallationGone, installation_token

METADATA_READ = {"metadata": "read"}
# GitHub's repository names: letters, digits, ".", "-", "_", at most 100 characters.
REPOSITORY_NAME_PATTERN = r"[A-Za-z0-9._-]+"
REPOSITORY_NAME_MAX_CHARS = 100


@dataclass(frozen=True)
class Repository:
    installation_id: int
    full_name: str
    owner: str
    name: str
    private: bool
    default_branch: str
    clone_url: str


@dataclass(frozen=True)
class Branch:
    name: str
    sha: str
    protected: bool


async def list_repositories(deployment: Deployment, user_id: str) -> list[Repository]:
    if deployment.config.github_app is None:
        raise GitHubAppNotConfigured()
    found: list[Repository] = []
    for installation in await installations.list_installations(deployment, user_id):
        try:
            token = await installation_token(deployment, installation.id, permissions=METADATA_READ)
        except InstallationGone:
            await installations.forget(deployment, installation.id)
            continue
        listed = await rest.api_pages(
            deployment.config, "/installation/repositories", "repositories", token=token.token
        )
        found.extend(_repository(installation.id, each) for each in listed)
    return sorted(found, key=lambda repository: repository.full_name.lower())


async def list_branches(
    deployment: Deployment, user_id: str, owner: str, name: str
) -> list[Branch]:
    check_names(owner, name)
    installation_id = await installation_of(deployment, user_id, owner, name)
    token = await installation_token(
        deployment, installation_id, repositories=(name,), permissions=METADATA_READ
    )
    listed = await rest.api_pages(
        deployment.config, f"/repos/{owner}/{name}/branches", None, token=token.token
    )
    try:
        return [
            Branch(str(each["name"]), str(each["commit"]["sha"]), bool(each.get("protected")))
            for each in listed
        ]
    except (KeyError, TypeError):
        raise UpstreamFailed("github_unavailable", "GitHub's branch list is malformed.") from None


def _not_found(owner: str, name: str) -> NotFound:
    return NotFound(
        "repository_not_found",
        f"No repository {owner}/{name} is reachable through your GitHub App installations. "
        "Install the App on its account (Settings → GitHub) and grant it that repository.",
    )


async def installation_of(deployment: Deployment, user_id: str, owner: str, name: str) -> int:
    """The user's installation that reaches owner/name (NotFound for anyone else's)."""
    try:
        data = await rest.api(
            deployment.config,
            "GET",
            f"/repos/{owner}/{name}/installation",
            token=await app_jwt(deployment),
        )
    except rest.GitHubNotFound:
        raise _not_found(owner, name) from None
    installation_id = data.get("id") if isinstance(data, dict) else None
    mine = {each.id for each in await installations.list_installations(deployment, user_id)}
    if installation_id not in mine:
        raise _not_found(owner, name)
    return installation_id


def check_names(owner: str, name: str) -> None:
    if len(owner) > GITHUB_NAME_MAX_CHARS or not re.fullmatch(GITHUB_NAME_PATTERN, owner):
        raise InvalidInput("repository_invalid", f"{owner!r} is not a GitHub account name.")
    if (
        not name
        or len(name) > REPOSITORY_NAME_MAX_CHARS
        or not re.fullmatch(REPOSITORY_NAME_PATTERN, name)
        or name in (".", "..")
    ):
        raise InvalidInput("repository_invalid", f"{name!r} is not a GitHub repository name.")


def _repository(installation_id: int, data: Any) -> Repository:
    try:
        return Repository(
            installation_id=installation_id,
            full_name=str(data["full_name"]),
            owner=str(data["owner"]["login"]),
            name=str(data["name"]),
            private=bool(data["private"]),
            default_branch=str(data.get("default_branch") or "main"),
            clone_url=str(data["clone_url"]),
        )
    except (KeyError, TypeError):
        raise UpstreamFailed(
            "github_unavailable", "GitHub's repository list is malformed."
        ) from None
