"""Who is calling: an API token (`Authorization: Bearer sam_pat_...`) or the session cookie.

One rule for every door that takes a user (the API's routes and the edge's chat viewer
socket): an explicit Authorization header that fails is a 401 and never falls back to the
cookie; a live session cookie counts only once the door's origin check has passed.
"""

from collections.abc import Callable
from dataclasses import dataclass

from worker.auth import api_tokens, grants, sessions
from worker.auth.users import User
from worker.deployment import Deployment
from worker.errors import Unauthorized


@dataclass(frozen=True)
class Caller:
    user: User
    grant: str  # what let them in (worker/auth/grants.py), for tokens minted on their behalf


async def authenticate(
    deployment: Deployment,
    authorization: str | None,
    session_id: str | None,
    app_origin: str,
    check_origin: Callable[[], None],
) -> Caller:
    """The caller, or Unauthorized saying how to sign in.

    `check_origin` runs only for a live session cookie and raises Forbidden if the request's
    origin may not use one (the API: state-changing methods same-origin; the viewer: always).
    """
    env = deployment.env
    if authorization is not None:
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() == "bearer" and api_tokens.looks_like_token(token):
            user = await api_tokens.user_for_token(env.DATABASE, token, deployment.clock)
            if user is not None:
                return Caller(user, grants.for_api_token(token))
        raise Unauthorized(
            "unauthorized",
            "The Authorization header does not hold a valid API token: send "
            "`Authorization: Bearer sam_pat_...` with a live token from POST /api/tokens.",
        )
    if session_id:
        user = await sessions.user_for_session(env.KV, env.DATABASE, session_id, deployment.clock)
        if user is not None:
            check_origin()
            return Caller(user, grants.for_session(session_id))
    raise Unauthorized(
        "unauthorized",
        f"You are not signed in. Sign in at {app_origin}/ (GitHub), or send "
        "`Authorization: Bearer sam_pat_...` with a personal API token.",
    )
