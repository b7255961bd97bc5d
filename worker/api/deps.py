"""FastAPI dependencies shared by the routes."""

from typing import Annotated

from fastapi import Depends, Request

from worker.auth import callers, sessions
from worker.auth.users import User
from worker.deployment import Deployment
from worker.errors import Forbidden


async def get_deployment(request: Request) -> Deployment:
    """The request's deployment (bindings, parsed settings, clock), which the edge built once
    for this request and put in the ASGI scope (worker.api.app.serving).

    Async on purpose: FastAPI runs a plain `def` dependency in a thread pool, which costs a
    thread hop per request here and does not exist on Python Workers at all.
    """
    return request.scope["deployment"]


async def current_user(request: Request) -> User:
    """The signed-in user: a session cookie (browsers) or `Authorization: Bearer sam_pat_...`.

    A cookie-authenticated POST/PUT/PATCH/DELETE must also be same-origin (see
    `worker.auth.sessions.check_same_origin`). Anything else is a 401 saying how to sign in.
    The deployment is read straight from the scope, not as a sub-dependency: FastAPI's
    dependency solving is a measurable part of every authenticated request.
    """
    deployment = await get_deployment(request)
    config = deployment.config
    caller = await callers.authenticate(
        deployment,
        request.headers.get("authorization"),
        request.cookies.get(sessions.SESSION_COOKIE),
        sessions.app_origin(request, config),
        lambda: sessions.check_same_origin(request, config),
    )
    request.state.grant = caller.grant
    return caller.user


async def current_grant(request: Request, user: Annotated[User, Depends(current_user)]) -> str:
    """What the signed-in user authenticated with (worker/auth/grants.py): tokens minted for
    them name it, so that signing out or revoking the API token ends those tokens too."""
    return request.state.grant


async def require_admin(user: Annotated[User, Depends(current_user)]) -> User:
    """`current_user`, who must also be an admin (403 otherwise)."""
    if not user.is_admin:
        raise Forbidden("forbidden", "Only an admin of this SAM deployment may do this.")
    return user


# What route signatures declare: `deployment: DeploymentDep`, `user: CurrentUser`, `admin: Admin`.
DeploymentDep = Annotated[Deployment, Depends(get_deployment)]
CurrentUser = Annotated[User, Depends(current_user)]
Admin = Annotated[User, Depends(require_admin)]
CurrentGrant = Annotated[str, Depends(current_grant)]
