"""Sign-in and sign-out: GitHub OAuth (state + PKCE), `me`, and a development-only sign-in.

    GET  /api/auth/github/login      → 302 to GitHub; state + verifier kept in KV, bound
                                       to a pre-auth cookie of this browser
    GET  /api/auth/github/callback   → state checked once, code exchanged, the account
                                       checked against the deployment's allowed users and
                                       organisations (403 otherwise), user upserted, session
                                       cookie set, 302 to the app
    GET  /api/auth/me                → the signed-in user (401 otherwise)
    POST /api/auth/logout            → the session is revoked, the cookie cleared, and the
                                       terminals its tokens opened closed on the user's nodes
    POST /api/auth/dev-login         → development only, and only from a loopback peer on
                                       a `*.localhost` host: a session for a local user

The flow runs on the app host (`app.{domain}`), where the session cookie must live; a
login started on another host is sent there first.
"""

import hmac
import ipaddress
import json
import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field

from worker.api.deps import CurrentUser, DeploymentDep
from worker.api.ratelimit import SIGN_IN, rate_limited
from worker.auth import allowlist, github, grants, sessions
from worker.auth.users import User, upsert_github_user, upsert_local_user
from worker.config import Config
from worker.errors import Forbidden, InvalidInput, SamError, Unavailable
from worker.github import installations
from worker.workspaces import revocation

router = APIRouter(tags=["auth"])

LOGIN_PATH = "/api/auth/github/login"
CALLBACK_PATH = "/api/auth/github/callback"
# Long enough to read GitHub's consent page; KV refuses TTLs under 60 s.
OAUTH_STATE_TTL_SECONDS = 600
OAUTH_STATE_BYTES = 32
OAUTH_STATE_KEY_PREFIX = "oauth_state:"
# The pre-auth cookie: ties a state to the browser that started the flow.
PREAUTH_COOKIE = "sam_oauth"
PREAUTH_COOKIE_PATH = "/api/auth/github/"
# GitHub's own rule for logins, used for dev sign-in names too.
LOGIN_PATTERN = r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$"
# The peer's address as the edge (Cloudflare, or the local edge) sets it; never the client's.
CLIENT_IP_HEADER = "cf-connecting-ip"
LOCAL_HOST_SUFFIX = ".localhost"


class DevLogin(BaseModel):
    login: Annotated[str, Field(pattern=LOGIN_PATTERN)]


class UserOut(BaseModel):
    """What the API shows about a user (to that user)."""

    id: str
    login: str
    name: str | None
    email: str | None
    avatar_url: str | None
    is_admin: bool

    @classmethod
    def of(cls, user: User) -> "UserOut":
        return cls(**{name: getattr(user, name) for name in cls.model_fields})


def _github_config(config: Config) -> Config:
    if not config.github_client_id or not config.github_client_secret:
        raise Unavailable(
            "github_not_configured",
            "GitHub sign-in is not configured on this deployment. The operator must create "
            "a GitHub OAuth app (callback URL: https://app.<domain>/api/auth/github/callback) "
            "and set SAM_GITHUB_CLIENT_ID and SAM_GITHUB_CLIENT_SECRET "
            "(`wrangler secret put SAM_GITHUB_CLIENT_SECRET`).",
        )
    return config


def _state_error(message: str) -> SamError:
    return InvalidInput("oauth_state_invalid", f"{message} Start signing in again at {LOGIN_PATH}.")


@router.get(
    LOGIN_PATH,
    status_code=302,
    response_class=RedirectResponse,
    dependencies=[Depends(rate_limited(SIGN_IN))],
)
async def github_login(request: Request, deployment: DeploymentDep) -> Response:
    config = _github_config(deployment.config)
    origin = sessions.app_origin(request, config)
    if (request.headers.get("host") or "").lower() != f"app.{config.domain}":
        return RedirectResponse(origin + LOGIN_PATH, status_code=302)
    state = secrets.token_urlsafe(OAUTH_STATE_BYTES)
    verifier = github.new_code_verifier()
    browser_nonce = secrets.token_urlsafe(OAUTH_STATE_BYTES)
    record = {"verifier": verifier, "browser": sessions.sha256_hex(browser_nonce)}
    await deployment.env.KV.put(
        OAUTH_STATE_KEY_PREFIX + sessions.sha256_hex(state),
        json.dumps(record),
        expirationTtl=OAUTH_STATE_TTL_SECONDS,
    )
    url = github.authorize_url(config, origin + CALLBACK_PATH, state, verifier)
    response = RedirectResponse(url, status_code=302)
    response.set_cookie(
        PREAUTH_COOKIE,
        browser_nonce,
        max_age=OAUTH_STATE_TTL_SECONDS,
        path=PREAUTH_COOKIE_PATH,
        secure=sessions.is_https(request),
        httponly=True,
        # Lax: the callback is a top-level GET navigation from GitHub, which Lax allows.
        samesite="lax",
    )
    return response


@router.get(CALLBACK_PATH, status_code=302, response_class=RedirectResponse)
async def github_callback(
    request: Request,
    deployment: DeploymentDep,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    if error is not None:
        raise InvalidInput("oauth_denied", f"GitHub did not authorize the sign-in ({error}).")
    if not code or not state:
        raise _state_error("The callback needs both `code` and `state`.")
    config = _github_config(deployment.config)
    browser_nonce = request.cookies.get(PREAUTH_COOKIE)
    if not browser_nonce:
        raise _state_error("This browser did not start a sign-in (no pre-auth cookie).")
    key = OAUTH_STATE_KEY_PREFIX + sessions.sha256_hex(state)
    raw = await deployment.env.KV.get(key)
    if raw is None:
        raise _state_error("The sign-in state is unknown, expired or already used.")
    record = json.loads(raw)
    if not hmac.compare_digest(record["browser"], sessions.sha256_hex(browser_nonce)):
        # Not deleted: a stranger holding the state must not cancel the real sign-in.
        raise _state_error("The sign-in state belongs to another browser.")
    # Single use, before anything can fail: a state never verifies twice.
    await deployment.env.KV.delete(key)
    origin = sessions.app_origin(request, config)
    access_token = await github.exchange_code(
        config, code, record["verifier"], origin + CALLBACK_PATH
    )
    profile = await github.fetch_profile(config, access_token)
    await allowlist.check_allowed(config, profile, access_token)
    user = await upsert_github_user(deployment.env.DATABASE, profile)
    if config.github_app is not None:
        # The setup callback checks installations with it (worker/github/setup.py).
        await installations.save_user_token(deployment, user.id, access_token)
    session_id = await sessions.create_session(deployment.env.KV, user.id, deployment.clock)
    response = RedirectResponse(origin + "/", status_code=302)
    sessions.set_session_cookie(response, request, session_id)
    response.delete_cookie(
        PREAUTH_COOKIE,
        path=PREAUTH_COOKIE_PATH,
        secure=sessions.is_https(request),
        httponly=True,
        samesite="lax",
    )
    return response


@router.get("/api/auth/me", response_model=UserOut)
async def me(user: CurrentUser) -> UserOut:
    return UserOut.of(user)


@router.post("/api/auth/logout", status_code=204)
async def logout(request: Request, deployment: DeploymentDep) -> Response:
    """Revoke this browser's session (if any) and clear its cookie; always 204."""
    session_id = request.cookies.get(sessions.SESSION_COOKIE)
    response = Response(status_code=204)
    if session_id:
        sessions.check_same_origin(request, deployment.config)
        session = await sessions.read_session(deployment.env.KV, session_id, deployment.clock)
        await sessions.revoke_session(deployment.env.KV, session_id)
        if session is not None:
            grant = grants.for_session(session_id)
            await revocation.revoke_on_nodes(deployment, session.user_id, grant)
    sessions.clear_session_cookie(response, request)
    return response


@router.post(
    "/api/auth/dev-login", response_model=UserOut, dependencies=[Depends(rate_limited(SIGN_IN))]
)
async def dev_login(
    body: DevLogin, request: Request, response: Response, deployment: DeploymentDep
) -> UserOut:
    config = deployment.config
    if not config.is_development:
        raise Forbidden(
            "dev_login_disabled",
            "Dev sign-in exists only in local development (SAM_ENVIRONMENT=development, "
            f"which `sam dev` sets); this deployment runs in {config.environment!r} mode. "
            f"Sign in with GitHub at {sessions.app_origin(request, config)}/.",
        )
    _require_this_machine(request)
    # A browser always sends Origin on a POST: refuse one from another site, so no page
    # can sign a visitor in as someone else (login CSRF). Scripts send no Origin.
    if request.headers.get("origin") is not None:
        sessions.check_same_origin(request, config)
    user = await upsert_local_user(deployment.env.DATABASE, body.login)
    session_id = await sessions.create_session(deployment.env.KV, user.id, deployment.clock)
    sessions.set_session_cookie(response, request, session_id)
    return UserOut.of(user)


def _require_this_machine(request: Request) -> None:
    """Dev sign-in hands out any identity, so only to a browser on this machine: a loopback
    peer that asked for a `*.localhost` host (`sam dev --host 0.0.0.0` must not share it)."""
    peer = request.headers.get(CLIENT_IP_HEADER) or ""
    host = (request.headers.get("host") or "").lower().rsplit(":", 1)[0]
    try:
        loopback = ipaddress.ip_address(peer).is_loopback
    except ValueError:
        loopback = False
    if loopback and host.endswith(LOCAL_HOST_SUFFIX):
        return
    raise Forbidden(
        "dev_login_not_local",
        "Dev sign-in answers only a browser on the machine running `sam dev`: a loopback "
        f"client (this one is {peer or 'unknown'!r}) at a *.localhost address (this request "
        f"asked for {host!r}). Open http://app.localhost:<port>/ on that machine.",
    )
