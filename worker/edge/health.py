"""`GET /health` (and `/api/health` on the app host), answered by the edge itself.

Load balancers and uptime checks call it often, so it never enters the API app: a
constant body, no I/O, and it keeps answering even if the API cannot start.
"""

import json

from wire.version import VERSION
from worker.errors import MethodNotAllowed
from worker.platform import Request, Response

HEALTH_PATHS = frozenset({"/health", "/api/health"})
ALLOWED_METHODS = ("GET", "HEAD")
_BODY = json.dumps({"status": "ok", "version": VERSION})
_HEADERS = {"content-type": "application/json", "cache-control": "no-store"}


def health(request: Request) -> Response:
    if request.method.value not in ALLOWED_METHODS:
        raise MethodNotAllowed(
            "method_not_allowed",
            f"{request.method.value} is not allowed on /health.",
            ALLOWED_METHODS,
        )
    return Response(_BODY, 200, headers=_HEADERS)
