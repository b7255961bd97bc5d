"""Write access for a push SAM makes from outside a workspace (the node agent's
`POST /workspaces/{id}/git/push`, wire/git.py): the repository recognised on the configured
GitHub, and a contents:write installation token for that one repository, minted for the
push and never stored.

    github_repository(config, url) -> (owner, name) | None
    await push_access(deployment, user_id, url) -> PushAccess | None

None: the URL is not a repository of the configured GitHub, or no GitHub App is
configured; a repository none of the user's installations reaches raises the picker's
NotFound (worker/github/repositories.py), which says what to do.
"""

import re
from dataclasses import dataclass, field

from worker.config import Config
from worker.deployment import Deployment
from worker.github.repositories import installation_of
from worker.github.tokens import installation_token

CONTENTS_WRITE = {"contents": "write"}
_PATH = re.compile(r"^/([A-Za-z0-9](?:-?[A-Za-z0-9])*)/([A-Za-z0-9._-]+?)(?:\.git)?/?$")


@dataclass(frozen=True)
class PushAccess:
    owner: str
    name: str
    remote_url: str  # https://{github}/{owner}/{name}.git
    token: str = field(repr=False)


def github_repository(config: Config, url: str) -> tuple[str, str] | None:
    """`owner, name` of a repository URL on the deployment's GitHub; None for any other."""
    base = config.github_base_url
    if not url.lower().startswith(base.lower() + "/"):
        return None
    match = _PATH.match(url[len(base) :])
    if match is None or match.group(2) in (".", ".."):
        return None
    return match.group(1), match.group(2)


async def push_access(deployment: Deployment, user_id: str, url: str) -> PushAccess | None:
    config = deployment.config
    repository = github_repository(config, url)
    if repository is None or config.github_app is None:
        return None
    owner, name = repository
    installation_id = await installation_of(deployment, user_id, owner, name)
    token = await installation_token(
        deployment, installation_id, repositories=(name,), permissions=CONTENTS_WRITE
    )
    return PushAccess(owner, name, f"{config.github_base_url}/{owner}/{name}.git", token.token)
