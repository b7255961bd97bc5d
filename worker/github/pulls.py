"""A task's pull request: found if one is open for its branch, else opened.

docs.github.com/rest/pulls/pulls: `GET /repos/{o}/{r}/pulls?head={o}:{branch}&state=open`
lists the open ones of that head branch; `POST /repos/{o}/{r}/pulls` {title, head, base,
body} opens one (201). All with an installation token narrowed to that one repository,
pull_requests:write and metadata:read (for the default branch), through the workspace
owner's own installation.

    await pull_request(deployment, user_id, url, branch, base, title, body) -> PullRequest
        base None: the repository's default branch (`GET /repos/{o}/{r}`)
"""

from dataclasses import dataclass

from worker.deployment import Deployment
from worker.errors import UpstreamFailed
from worker.github import rest
from worker.github.git_tokens import NotOnGitHub, github_repository
from worker.github.repositories import installation_of
from worker.github.tokens import installation_token

PULL_REQUESTS_WRITE = {"pull_requests": "write", "metadata": "read"}


@dataclass(frozen=True)
class PullRequest:
    url: str  # its page on GitHub
    number: int
    opened: bool  # False: it was open already (a step run again after a crash)


async def pull_request(
    deployment: Deployment,
    user_id: str,
    url: str,
    branch: str,
    base: str | None,
    title: str,
    body: str,
) -> PullRequest:
    found = github_repository(deployment.config, url)
    if found is None:
        raise NotOnGitHub(url)
    owner, name = found
    installation_id = await installation_of(deployment, user_id, owner, name)
    token = await installation_token(
        deployment, installation_id, repositories=(name,), permissions=PULL_REQUESTS_WRITE
    )
    config, path = deployment.config, f"/repos/{owner}/{name}"
    listed = await rest.api(
        config, "GET", f"{path}/pulls?head={owner}:{branch}&state=open", token=token.token
    )
    if isinstance(listed, list) and listed:
        return _pull(listed[0], opened=False)
    if base is None:
        repository = await rest.api(config, "GET", path, token=token.token)
        base = str((repository or {}).get("default_branch") or "main")
    made = await rest.api(
        config,
        "POST",
        f"{path}/pulls",
        token=token.token,
        body={"title": title, "head": branch, "base": base, "body": body},
        expect=(201,),
    )
    return _pull(made, opened=True)


def _pull(data: object, *, opened: bool) -> PullRequest:
    try:
        return PullRequest(str(data["html_url"]), int(data["number"]), opened)  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        raise UpstreamFailed("github_unavailable", "GitHub's pull request is malformed.") from None
