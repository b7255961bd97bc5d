"""What let a user mint a terminal token: their browser session or one of their API tokens.

A terminal token (worker/auth/scoped_tokens.py) names its grant in a `grant` claim, so that
signing out — or revoking the API token — ends the token's use at once rather than when it
expires:

    session:<sha256 of the session id>    live while KV holds `session:<sha256>` (sessions.py)
    token:<sha256 of the API token>       live while D1 holds that hash unrevoked (api_tokens)

Both are the hashes those stores are keyed by, never the secret itself: a grant read off a
token (which its holder can decode) opens nothing. The edge checks the grant every time a
token is presented (worker/edge/proxy.py); sign-out also tells the nodes of the user's
workspaces to close what the grant opened (worker/workspaces/dispatch.py revoke_grant).
"""

from worker.auth import sessions
from worker.deployment import Deployment
from worker.errors import Unauthorized

SESSION = "session:"
API_TOKEN = "token:"


class GrantRevoked(Unauthorized):
    def __init__(self) -> None:
        super().__init__(
            "token_revoked",
            "This token was issued to a session that has signed out (or an API token that "
            "was revoked). Sign in again and ask for a new one: POST /api/terminal/token.",
        )


def for_session(session_id: str) -> str:
    return SESSION + sessions.sha256_hex(session_id)


def for_api_token(token: str) -> str:
    return for_api_token_hash(sessions.sha256_hex(token))


def for_api_token_hash(digest: str) -> str:
    return API_TOKEN + digest


async def check_live(deployment: Deployment, grant: str) -> None:
    """Return if the session or API token behind `grant` still stands; else GrantRevoked."""
    if grant.startswith(SESSION):
        digest = grant.removeprefix(SESSION)
        session = await sessions.read_session_by_digest(deployment.env.KV, digest, deployment.clock)
        live = session is not None
    elif grant.startswith(API_TOKEN):
        row = (
            await deployment.env.DATABASE.prepare(
                "SELECT 1 FROM api_tokens WHERE token_hash = ? AND revoked_at IS NULL"
            )
            .bind(grant.removeprefix(API_TOKEN))
            .first()
        )
        live = row is not None
    else:
        live = False
    if not live:
        raise GrantRevoked()
