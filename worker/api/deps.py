"""FastAPI dependencies shared by the routes."""

from typing import Annotated, Any

from fastapi import Depends, Request

from worker.auth import api_tokens, sessions
from worker.auth.users import User, get_user
from worker.config import Config
from worker.errors import Forbidden, Unauthorized


async def get_env(request: Request) -> Any:
    """The worker's `env`, which the ASGI adapter puts in the scope on both platforms.

    Async on purpose: FastAPI runs a plain `def` dependency in a thread pool, which costs a
    thread hop per request here and does not exist on Python Workers at all.
    """
    return request.scope["env"]


async def current_user(request: Request, env: Annotated[Any, Depends(get_env)]) -> User:
    """The signed-in user: a session cookie (browsers) or `Authorization: Bearer sam_pat_...`.

    A cookie-authenticated POST/PUT/PATCH/DELETE must also be same-origin (see
    `worker.auth.sessions.check_same_origin`). Anything else is a 401 saying how to sign in.
    """
    config = Config.from_env(env)
    authorization = request.headers.get("authorization")
    if authorization is not None:
        # An explicit credential that fails is a 401; it never falls back to the cookie.
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and api_tokens.looks_like_token(token):
            user = await api_tokens.user_for_token(env.DATABASE, token)
            if user is not None:
                request.state.auth = "token"
                return user
        raise Unauthorized(
            "unauthorized",
            "The Authorization header does not hold a valid API token: send "
            "`Authorization: Bearer sam_pat_...` with a live token from POST /api/tokens.",
        )
    session_id = request.cookies.get(sessions.SESSION_COOKIE)
    if session_id:
        session = await sessions.read_session(env.KV, session_id)
        user = None if session is None else await get_user(env.DATABASE, session.user_id)
        if user is not None:
            sessions.check_same_origin(request, config)
            request.state.auth = "session"
            return user
    raise Unauthorized(
        "unauthorized",
        f"You are not signed in. Sign in at {sessions.app_origin(request, config)}/ "
        "(GitHub), or send `Authorization: Bearer sam_pat_...` with a personal API token.",
    )


async def require_admin(user: Annotated[User, Depends(current_user)]) -> User:
    """`current_user`, who must also be an admin (403 otherwise)."""
    if not user.is_admin:
        raise Forbidden("forbidden", "Only an admin of this SAM deployment may do this.")
    return user


# What route signatures declare: `env: Env`, `user: CurrentUser`, `admin: Admin`.
Env = Annotated[Any, Depends(get_env)]
CurrentUser = Annotated[User, Depends(current_user)]
Admin = Annotated[User, Depends(require_admin)]
