"""`/api/github`: installing the GitHub App, and what the project picker lists.

    GET /api/github/install                → 302 to github.com/apps/{slug}/installations/new
                                             ?state=… (single use, bound to the caller)
    GET /api/github/setup?installation_id=&setup_action=&state=
                                           → the App's setup URL: the installation is
                                             recorded once GitHub lists it among the
                                             caller's own (403 otherwise); 302 to the app
    GET /api/github/installations          → {installations: [{id, account, account_type,
                                                               created_at}]}
    GET /api/github/repositories           → {repositories: [{installation_id, full_name,
                                               owner, name, private, default_branch,
                                               clone_url}]}
    GET /api/github/repositories/{owner}/{repo}/branches
                                           → {branches: [{name, sha, protected}]}; 404 for
                                             a repository none of the caller's installations
                                             reaches

Without the App configured, each answers 503 `github_app_not_configured` naming the settings.
"""

from dataclasses import asdict

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel

from worker.api.deps import CurrentUser, DeploymentDep
from worker.auth import sessions
from worker.github import installations, repositories, setup
from worker.github.app_jwt import GitHubAppNotConfigured

router = APIRouter(tags=["github"])


class InstallationOut(BaseModel):
    id: int
    account: str
    account_type: str
    created_at: str


class InstallationList(BaseModel):
    installations: list[InstallationOut]


class RepositoryOut(BaseModel):
    installation_id: int
    full_name: str
    owner: str
    name: str
    private: bool
    default_branch: str
    clone_url: str


class RepositoryList(BaseModel):
    repositories: list[RepositoryOut]


class BranchOut(BaseModel):
    name: str
    sha: str
    protected: bool


class BranchList(BaseModel):
    branches: list[BranchOut]


# What GitHub sends as setup_action when an organisation member only asked an owner to
# install the App: there is no installation yet.
SETUP_REQUESTED = "request"


@router.get("/api/github/install", status_code=302, response_class=RedirectResponse)
async def install(user: CurrentUser, deployment: DeploymentDep) -> RedirectResponse:
    return RedirectResponse(await setup.install_url(deployment, user.id), status_code=302)


@router.get("/api/github/setup", status_code=302, response_class=RedirectResponse)
async def setup_callback(
    request: Request,
    user: CurrentUser,
    deployment: DeploymentDep,
    installation_id: str = "",
    setup_action: str = "",
    state: str = "",
) -> RedirectResponse:
    origin = sessions.app_origin(request, deployment.config)
    if setup_action == SETUP_REQUESTED:
        return RedirectResponse(f"{origin}/?github_setup=requested", status_code=302)
    recorded = await setup.complete_setup(deployment, user.id, installation_id, state)
    return RedirectResponse(f"{origin}/?github_installation={recorded.id}", status_code=302)


@router.get("/api/github/installations", response_model=InstallationList)
async def list_installations(user: CurrentUser, deployment: DeploymentDep) -> InstallationList:
    if deployment.config.github_app is None:
        raise GitHubAppNotConfigured()
    found = await installations.list_installations(deployment, user.id)
    return InstallationList(installations=[InstallationOut(**asdict(each)) for each in found])


@router.get("/api/github/repositories", response_model=RepositoryList)
async def list_repositories(user: CurrentUser, deployment: DeploymentDep) -> RepositoryList:
    found = await repositories.list_repositories(deployment, user.id)
    return RepositoryList(repositories=[RepositoryOut(**asdict(each)) for each in found])


@router.get("/api/github/repositories/{owner}/{repo}/branches", response_model=BranchList)
async def list_branches(
    owner: str, repo: str, user: CurrentUser, deployment: DeploymentDep
) -> BranchList:
    found = await repositories.list_branches(deployment, user.id, owner, repo)
    return BranchList(branches=[BranchOut(**asdict(each)) for each in found])
