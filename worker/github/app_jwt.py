"""The GitHub App's own credential: a short RS256 JWT, signed with the App's private key.

docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app:
`iss` is the App ID, `iat` is backdated to absorb clock drift, `exp` is at most ten minutes
after `iat`. Signed through the Worker's crypto seam (WebCrypto RSASSA-PKCS1-v1_5), with the
deployment's clock; it only ever goes to GitHub's API, which verifies it.

    jwt = await app_jwt(deployment)

An isolate reuses a JWT for APP_JWT_REUSE_SECONDS (it is then still valid for 4 more
minutes): importing the RSA key and signing cost CPU time on every GitHub call otherwise.
"""

from worker.auth import jws
from worker.deployment import Deployment
from worker.errors import Unavailable
from worker.isolate_cache import IsolateCache
from worker.platform import WebCryptoError

# GitHub's advice: issued 60 s in the past, in case its clock and ours differ.
APP_JWT_BACKDATE_SECONDS = 60
# GitHub refuses an `exp` more than 10 minutes ahead; 9 after now is 10 after `iat`.
APP_JWT_LIFETIME_SECONDS = 9 * 60
APP_JWT_REUSE_SECONDS = 5 * 60
# Per App and key (a rotated key signs afresh); one entry per deployment in practice.
_signed: IsolateCache[tuple[str, bytes], str] = IsolateCache(8, APP_JWT_REUSE_SECONDS)


class GitHubAppNotConfigured(Unavailable):
    def __init__(self) -> None:
        super().__init__(
            "github_app_not_configured",
            "The GitHub App is not configured on this deployment. The operator must create "
            "one and set SAM_GITHUB_APP_ID, SAM_GITHUB_APP_SLUG and SAM_GITHUB_APP_PRIVATE_KEY "
            "(docs/github-app.md).",
        )


async def app_jwt(deployment: Deployment) -> str:
    app = deployment.config.github_app
    if app is None:
        raise GitHubAppNotConfigured()
    now = deployment.now()
    cached = _signed.get((app.app_id, app.private_key), now)
    if cached is not None:
        return cached
    token = await _sign(app.app_id, app.private_key, int(now))
    _signed.put((app.app_id, app.private_key), token, now)
    return token


async def _sign(app_id: str, private_key: bytes, now: int) -> str:
    claims = {
        "iat": now - APP_JWT_BACKDATE_SECONDS,
        "exp": now + APP_JWT_LIFETIME_SECONDS,
        "iss": app_id,
    }
    try:
        return await jws.sign_rs256(claims, private_key)
    except WebCryptoError as exc:
        # Config checked the PEM's shape; WebCrypto is what finds the DER is not an RSA key.
        raise Unavailable(
            "github_app_key_invalid",
            "SAM_GITHUB_APP_PRIVATE_KEY is not an RSA private key WebCrypto can sign with; "
            "set it to the .pem file GitHub generated for the App (docs/github-app.md).",
        ) from exc
