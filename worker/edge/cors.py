"""Cross-origin calls from the web app to `ws-{id}.{domain}` (the workspace proxy).

The app on `app.{domain}` calls a workspace's HTTP routes (the agent sessions) on another
origin. Its terminal token travels as `?token=`, so nothing ambient (no cookie, no
Authorization header) is involved: the app's origin may send GET and POST with a JSON
Content-Type, and read the answers. Any other origin gets no CORS header at all, and its
preflight a 403. WebSockets need none of this (browsers do not preflight them; the proxy
checks their Origin itself).
"""

from worker.errors import Forbidden
from worker.platform import Request, Response

METHODS = ("GET", "POST")
HEADERS = frozenset({"content-type"})
MAX_AGE_SECONDS = 600


def allow(app_origin: str) -> dict[str, str]:
    """The headers that let the app's page read an answer."""
    return {"access-control-allow-origin": app_origin, "vary": "Origin"}


def preflight(request: Request, app_origin: str) -> Response:
    """Answer a browser's OPTIONS: may the app's page send this GET or POST?"""
    method = request.headers.get("access-control-request-method", "")
    asked = request.headers.get("access-control-request-headers", "")
    headers = {name.strip().lower() for name in asked.split(",") if name.strip()}
    if request.headers.get("origin") != app_origin or method not in METHODS or headers - HEADERS:
        raise Forbidden(
            "cors_refused",
            f"Only pages of {app_origin} may call a workspace cross-origin, with "
            f"{' or '.join(METHODS)} and at most a Content-Type header (the terminal token "
            "from POST /api/terminal/token goes in ?token=).",
        )
    return Response(
        None,
        204,
        headers={
            **allow(app_origin),
            "access-control-allow-methods": ", ".join(METHODS),
            "access-control-allow-headers": ", ".join(sorted(HEADERS)),
            "access-control-max-age": str(MAX_AGE_SECONDS),
        },
    )
