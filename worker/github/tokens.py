"""Installation access tokens: what the App acts with inside one installation.

docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app:
`POST /app/installations/{id}/access_tokens` (app JWT) with optional `repositories` (names
in the installation's account) and `permissions` ({"contents": "read", …}) narrowing the
token; GitHub answers 201 {token, expires_at, permissions, repositories?}, a token that
lives one hour.

    token = await installation_token(deployment, 42, repositories=("api",),
                                     permissions={"contents": "read"})
    token.token, token.expires_at

Tokens are cached in the isolate until TOKEN_REFRESH_MARGIN_SECONDS before they expire,
keyed by the App, installation and restriction: a read token is never handed out for a
write, nor one repository's for another's. They live only in memory, never in KV or D1.
"""

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from worker.deployment import Deployment
from worker.errors import NotFound, UpstreamFailed
from worker.github import rest
from worker.github.app_jwt import app_jwt
from worker.isolate_cache import IsolateCache

# A token handed out has at least this long left: enough for a clone or a push to finish.
TOKEN_REFRESH_MARGIN_SECONDS = 5 * 60
GITHUB_TOKEN_LIFETIME_SECONDS = 60 * 60
MAX_CACHED_TOKENS = 1024

CacheKey = tuple[str, str, int, tuple[str, ...] | None, tuple[tuple[str, str], ...] | None]
_cache: IsolateCache[CacheKey, "InstallationToken"] = IsolateCache(
    MAX_CACHED_TOKENS, GITHUB_TOKEN_LIFETIME_SECONDS
)


@dataclass(frozen=True)
class InstallationToken:
    token: str = field(repr=False)
    expires_at: float  # seconds since the epoch
    installation_id: int
    repositories: tuple[str, ...] | None  # None: every repository of the installation
    permissions: dict[str, str]  # what GitHub granted


class InstallationGone(NotFound):
    def __init__(self, installation_id: int) -> None:
        super().__init__(
            "github_installation_gone",
            f"The GitHub App is no longer installed as installation {installation_id} "
            "(uninstalled or suspended). Install it again from Settings → GitHub.",
        )


async def installation_token(
    deployment: Deployment,
    installation_id: int,
    *,
    repositories: tuple[str, ...] | None = None,
    permissions: Mapping[str, str] | None = None,
) -> InstallationToken:
    """A token of the installation, narrowed to `repositories` and `permissions` if given."""
    app = deployment.config.github_app
    key: CacheKey = (
        app.app_id if app else "",
        deployment.config.github_api_url,
        installation_id,
        tuple(sorted(repositories)) if repositories is not None else None,
        tuple(sorted(permissions.items())) if permissions is not None else None,
    )
    now = deployment.now()
    cached = _cache.get(key, now)
    if cached is not None and cached.expires_at - TOKEN_REFRESH_MARGIN_SECONDS > now:
        return cached
    minted = await _mint(deployment, installation_id, repositories, permissions)
    _cache.put(key, minted, now)
    return minted


async def _mint(
    deployment: Deployment,
    installation_id: int,
    repositories: tuple[str, ...] | None,
    permissions: Mapping[str, str] | None,
) -> InstallationToken:
    body: dict[str, object] = {}
    if repositories is not None:
        body["repositories"] = list(repositories)
    if permissions is not None:
        body["permissions"] = dict(permissions)
    try:
        data = await rest.api(
            deployment.config,
            "POST",
            f"/app/installations/{installation_id}/access_tokens",
            token=await app_jwt(deployment),
            body=body,
            expect=(201,),
        )
    except rest.GitHubNotFound:
        raise InstallationGone(installation_id) from None
    try:
        token = data["token"]
        expires_at = datetime.fromisoformat(data["expires_at"].replace("Z", "+00:00"))
        granted = dict(data.get("permissions") or {})
    except (KeyError, TypeError, ValueError, AttributeError):
        raise UpstreamFailed(
            "github_unavailable", "GitHub's installation token answer has no token or expiry."
        ) from None
    if not isinstance(token, str) or not token:
        raise UpstreamFailed("github_unavailable", "GitHub answered an empty installation token.")
    return InstallationToken(token, expires_at.timestamp(), installation_id, repositories, granted)
