"""FastAPI dependencies shared by the routes."""

from typing import Annotated

from fastapi import Depends, Request

from worker.auth import api_tokens, grants, sessions
from worker.auth.users import User, get_user
from worker.deployment import Deployment
from worker.errors import Forbidden, Unauthorized


async def get_deployment(request: Request) -> Deployment:
    """The request's deployment (bindings, parsed settings, clock), which the edge built once
    for this request and put in the ASGI scope (worker.api.app.serving).

    Async on purpose: FastAPI runs a plain `def` dependency in a thread pool, which costs a
    thread hop per request here and does not exist on Python Workers at all.
    """
    return request.scope["deployment"]


async def current_user(
    request: Request, deployment: Annotated[Deployment, Depends(get_deployment)]
) -> User:
    """The signed-in user: a session cookie (browsers) or `Authorization: Bearer sam_pat_...`.

    A cookie-authenticated POST/PUT/PATCH/DELETE must also be same-origin (see
    `worker.auth.sessions.check_same_origin`). Anything else is a 401 saying how to sign in.
    """
    env, config = deployment.env, deployment.config
    authorization = request.headers.get("authorization")
    if authorization is not None:
        # An explicit credential that fails is a 401; it never falls back to the cookie.
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and api_tokens.looks_like_token(token):
            user = await api_tokens.user_for_token(env.DATABASE, token, deployment.clock)
            if user is not None:
                request.state.grant = grants.for_api_token(token)
                return user
        raise Unauthorized(
            "unauthorized",
            "The Authorization header does not hold a valid API token: send "
            "`Authorization: Bearer sam_pat_...` with a live token from POST /api/tokens.",
        )
    session_id = request.cookies.get(sessions.SESSION_COOKIE)
    if session_id:
        session = await sessions.read_session(env.KV, session_id, deployment.clock)
        user = None if session is None else await get_user(env.DATABASE, session.user_id)
        if user is not None:
            sessions.check_same_origin(request, config)
            request.state.grant = grants.for_session(session_id)
            return user
    raise Unauthorized(
        "unauthorized",
        f"You are not signed in. Sign in at {sessions.app_origin(request, config)}/ "
        "(GitHub), or send `Authorization: Bearer sam_pat_...` with a personal API token.",
    )


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
