"""The GitHub OAuth web flow (with PKCE) and the one REST call sign-in needs.

docs.github.com/apps/oauth-apps/building-oauth-apps/authorizing-oauth-apps:

    browser ─▶ {base}/login/oauth/authorize?client_id&redirect_uri&state&code_challenge…
    GitHub  ─▶ redirect_uri?code&state
    worker  ─▶ POST {base}/login/oauth/access_token (form; Accept: application/json)
               with client_secret and code_verifier → {"access_token": …}
               (a refused code is still a 200, with {"error": …, "error_description": …})
    worker  ─▶ GET {api}/user, and {api}/user/emails when the email is private
    worker  ─▶ GET {api}/user/memberships/orgs/{org} when the deployment admits an
               organisation (worker/auth/allowlist.py; 200 {"state": "active"|"pending"},
               404 when not a member)

All outbound calls go through `worker.platform.fetch`, so they run on both platforms.
Failures become domain errors here: GitHub refusing the code is the caller's InvalidInput,
GitHub unreachable or answering nonsense is UpstreamFailed.
"""

import base64
import hashlib
import secrets
from typing import Any
from urllib.parse import urlencode

from worker.auth.users import GitHubProfile
from worker.config import Config
from worker.errors import InvalidInput, UpstreamFailed
from worker.github.rest import USER_AGENT
from worker.github.rest import api_headers as _api_headers
from worker.github.rest import call as _call

# Enough to read the profile and, when it is private, the primary email address; and the
# user's organisation memberships when the deployment admits organisations.
OAUTH_SCOPES = "read:user user:email"
ORG_SCOPE = "read:org"
CODE_VERIFIER_BYTES = 64  # 86 base64url characters; RFC 7636 allows 43 to 128


def new_code_verifier() -> str:
    return secrets.token_urlsafe(CODE_VERIFIER_BYTES)


def code_challenge(verifier: str) -> str:
    """The S256 challenge: base64url(sha256(verifier)) without padding (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def oauth_scopes(config: Config) -> str:
    return f"{OAUTH_SCOPES} {ORG_SCOPE}" if config.allowed_github_orgs else OAUTH_SCOPES


def authorize_url(config: Config, redirect_uri: str, state: str, verifier: str) -> str:
    assert config.github_client_id, "checked by the caller (503 when missing)"
    query = urlencode(
        {
            "client_id": config.github_client_id,
            "redirect_uri": redirect_uri,
            "scope": oauth_scopes(config),
            "state": state,
            "code_challenge": code_challenge(verifier),
            "code_challenge_method": "S256",
        }
    )
    return f"{config.github_base_url}/login/oauth/authorize?{query}"


async def exchange_code(config: Config, code: str, verifier: str, redirect_uri: str) -> str:
    """The user's access token for an authorization `code` (400 if GitHub refuses it)."""
    assert config.github_client_id and config.github_client_secret, "checked by the caller"
    body = urlencode(
        {
            "client_id": config.github_client_id,
            "client_secret": config.github_client_secret,
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
    )
    status, reply = await _call(
        f"{config.github_base_url}/login/oauth/access_token",
        method="POST",
        headers={
            "accept": "application/json",
            "content-type": "application/x-www-form-urlencoded",
            "user-agent": USER_AGENT,
        },
        body=body,
    )
    if isinstance(reply, dict) and reply.get("error"):
        # GitHub's own words (e.g. "The code passed is incorrect or expired."); never the
        # secret, which GitHub does not echo.
        detail = reply.get("error_description") or reply["error"]
        raise InvalidInput("oauth_failed", f"GitHub refused the sign-in: {detail}")
    token = reply.get("access_token") if isinstance(reply, dict) else None
    if status != 200 or not isinstance(token, str) or not token:
        raise UpstreamFailed(
            "github_unavailable", f"GitHub's token endpoint answered {status} unexpectedly."
        )
    return token


async def fetch_profile(config: Config, access_token: str) -> GitHubProfile:
    user = await _api_get(config, "/user", access_token)
    if not isinstance(user, dict) or not isinstance(user.get("id"), int) or not user.get("login"):
        raise UpstreamFailed("github_unavailable", "GitHub's /user answer has no id or login.")
    email = user.get("email") or await _primary_email(config, access_token)
    return GitHubProfile(
        github_id=user["id"],
        login=str(user["login"]),
        name=user.get("name") or None,
        email=email,
        avatar_url=user.get("avatar_url") or None,
    )


async def is_active_member(config: Config, access_token: str, org: str) -> bool:
    """Whether the token's user is an active member of `org` (private memberships too)."""
    status, reply = await _call(
        f"{config.github_api_url}/user/memberships/orgs/{org}",
        method="GET",
        headers=_api_headers(access_token),
    )
    if status in (403, 404):  # not a member, or membership hidden from this token
        return False
    if status != 200 or not isinstance(reply, dict):
        raise UpstreamFailed(
            "github_unavailable", f"GitHub's membership of {org} answered {status}."
        )
    return reply.get("state") == "active"


async def _primary_email(config: Config, access_token: str) -> str | None:
    emails = await _api_get(config, "/user/emails", access_token)
    if not isinstance(emails, list):
        return None
    for entry in emails:
        if isinstance(entry, dict) and entry.get("primary") and entry.get("verified"):
            return str(entry.get("email")) or None
    return None


async def _api_get(config: Config, path: str, access_token: str) -> Any:
    status, reply = await _call(
        config.github_api_url + path, method="GET", headers=_api_headers(access_token)
    )
    if status != 200:
        raise UpstreamFailed("github_unavailable", f"GitHub's {path} answered {status}.")
    return reply
