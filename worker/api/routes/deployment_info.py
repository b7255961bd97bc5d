"""`GET /api/deployment`: what this deployment offers, so that the web app shows only what
works before anyone submits (public: the sign-in page needs it; nothing in it is secret).

    {"sign_in": {"github": bool, "development": bool},
     "github_app": bool,      the GitHub App is configured: repositories can be picked
     "providers": [{"name": "local", "available": true, "reason": null},
                   {"name": "hetzner", "available": false, "reason": "This SAM deployment
                    cannot create cloud nodes: ..."}]}
"""

from fastapi import APIRouter
from pydantic import BaseModel

from worker.api.deps import DeploymentDep
from worker.errors import SamError
from worker.nodes.model import Provider
from worker.nodes.provisioning import check_available

router = APIRouter(tags=["deployment"])


class SignInMethods(BaseModel):
    github: bool  # a GitHub OAuth app and who may use it (worker/auth/allowlist.py) are set
    development: bool  # dev sign-in (`sam dev`, from this machine only)


class ProviderOption(BaseModel):
    name: Provider
    available: bool
    reason: str | None  # why not, in words for the user (the provider's own refusal)


class DeploymentOut(BaseModel):
    sign_in: SignInMethods
    github_app: bool  # the GitHub App is configured (docs/github-app.md)
    providers: list[ProviderOption]


@router.get("/api/deployment", response_model=DeploymentOut)
async def show(deployment: DeploymentDep) -> DeploymentOut:
    config = deployment.config
    options = []
    for provider in Provider:
        try:
            check_available(deployment, provider)
        except SamError as refused:
            options.append(ProviderOption(name=provider, available=False, reason=refused.message))
        else:
            options.append(ProviderOption(name=provider, available=True, reason=None))
    someone_allowed = config.allowed_github_users or config.allowed_github_orgs
    github = bool(config.github_client_id and config.github_client_secret and someone_allowed)
    return DeploymentOut(
        sign_in=SignInMethods(github=github, development=config.is_development),
        github_app=config.github_app is not None,
        providers=options,
    )
