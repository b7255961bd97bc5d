"""Installing the App: the install URL, and the setup callback that records an installation
only once GitHub confirms it is the signed-in user's own.

    url = await install_url(deployment, user_id)
        https://github.com/apps/{slug}/installations/new?state=…   state: single use, bound
        to the user, kept in KV for INSTALL_STATE_TTL_SECONDS
    installation = await complete_setup(deployment, user_id, installation_id, state)

GitHub sends the browser back to the App's setup URL with `installation_id`; anyone can
type any id there, so the id is looked up in `GET /user/installations` with the user's own
token (what GitHub lets that user access): someone else's installation is refused.
"""

import hmac
import json
import secrets
from urllib.parse import urlencode

from worker.auth.sessions import sha256_hex
from worker.deployment import Deployment
from worker.errors import Conflict, Forbidden, InvalidInput, Unavailable
from worker.github import installations, rest
from worker.github.app_jwt import GitHubAppNotConfigured
from worker.github.installations import Installation

# Long enough to pick repositories on GitHub's install page; KV refuses TTLs under 60 s.
INSTALL_STATE_TTL_SECONDS = 30 * 60
INSTALL_STATE_BYTES = 32
INSTALL_STATE_KEY_PREFIX = "github_install_state:"
INSTALL_PATH = "/api/github/install"


def _state_error(message: str) -> InvalidInput:
    return InvalidInput(
        "github_setup_state_invalid", f"{message} Start the installation again at {INSTALL_PATH}."
    )


async def install_url(deployment: Deployment, user_id: str) -> str:
    app = deployment.config.github_app
    if app is None:
        raise GitHubAppNotConfigured()
    state = secrets.token_urlsafe(INSTALL_STATE_BYTES)
    record = {"user_id": user_id}
    await deployment.env.KV.put(
        INSTALL_STATE_KEY_PREFIX + sha256_hex(state),
        json.dumps(record),
        expirationTtl=INSTALL_STATE_TTL_SECONDS,
    )
    query = urlencode({"state": state})
    return f"{deployment.config.github_base_url}/apps/{app.slug}/installations/new?{query}"


async def complete_setup(
    deployment: Deployment, user_id: str, installation_id: str, state: str
) -> Installation:
    """Record `installation_id` for the user once the state and GitHub both vouch for it."""
    if deployment.config.github_app is None:
        raise GitHubAppNotConfigured()
    if not installation_id.isdigit() or len(installation_id) > 18:
        raise InvalidInput(
            "github_installation_id_invalid",
            f"installation_id must be GitHub's numeric installation id, not {installation_id!r}.",
        )
    await _spend_state(deployment, user_id, state)
    token = await installations.open_user_token(deployment, user_id)
    if token is None:
        raise Conflict(
            "github_sign_in_needed",
            "SAM needs your GitHub sign-in to confirm the installation is yours: sign out, "
            "sign in with GitHub again, and repeat the installation.",
        )
    wanted = int(installation_id)
    try:
        mine = await rest.api_pages(
            deployment.config, "/user/installations", "installations", token=token
        )
    except rest.GitHubRefused:
        raise Conflict(
            "github_sign_in_needed",
            "GitHub no longer accepts your sign-in token: sign out, sign in with GitHub "
            "again, and repeat the installation.",
        ) from None
    except rest.GitHubForbidden:
        raise Unavailable(
            "github_sign_in_not_the_app",
            "GitHub lists installations only to tokens of the GitHub App itself, and this "
            "deployment signs in with another OAuth client. The operator must set "
            "SAM_GITHUB_CLIENT_ID and SAM_GITHUB_CLIENT_SECRET to the App's client ID and "
            "secret (docs/github-app.md); then sign in again and repeat the installation.",
        ) from None
    for found in mine:
        if isinstance(found, dict) and found.get("id") == wanted:
            account = found.get("account") or {}
            return await installations.record(
                deployment,
                user_id,
                wanted,
                str(account.get("login") or ""),
                str(account.get("type") or "User"),
            )
    raise Forbidden(
        "github_installation_not_yours",
        f"GitHub does not list installation {wanted} among those your account can access, "
        "so it was not added. Install the App on your own account or an organisation you "
        f"administer, starting at {INSTALL_PATH}.",
    )


async def _spend_state(deployment: Deployment, user_id: str, state: str) -> None:
    if not state:
        raise _state_error("The setup callback has no state.")
    key = INSTALL_STATE_KEY_PREFIX + sha256_hex(state)
    raw = await deployment.env.KV.get(key)
    if raw is None:
        raise _state_error("The installation state is unknown, expired or already used.")
    record = json.loads(raw)
    if not hmac.compare_digest(record["user_id"], user_id):
        # Not deleted: a stranger holding the state must not spoil the real user's setup.
        raise _state_error("The installation was started by another user.")
    await deployment.env.KV.delete(key)  # single use, before anything else can fail
