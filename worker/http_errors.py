"""Where errors become HTTP: the one mapping from the error tree to statuses, and the 500.

    error_reply(SamError)   → (status, {"error": code, "message": text}, headers)
    crash_reply(where)      → (500, the internal_error body), the traceback logged once

Every HTTP surface answers through these two: the API's exception handler and its ASGI
boundary (worker/api/app.py, worker/api/middleware.py), and the edge's own surfaces (the
host router, health, the `ws-{id}` proxy) in worker/edge/router.py. Domain code raises the
kinds in worker/errors.py and never names a status. It sits beside errors.py, not in edge/,
because both the API and the edge import it and the edge already imports the API.
"""

import logging
from http import HTTPStatus
from typing import Any

from worker.errors import (
    Conflict,
    Forbidden,
    InvalidInput,
    MethodNotAllowed,
    NotFound,
    RateLimited,
    SamError,
    TooLarge,
    Unauthorized,
    Unavailable,
    UpstreamFailed,
)

log = logging.getLogger("sam.edge")

STATUS_FOR: dict[type[SamError], int] = {
    InvalidInput: HTTPStatus.BAD_REQUEST,
    Unauthorized: HTTPStatus.UNAUTHORIZED,
    Forbidden: HTTPStatus.FORBIDDEN,
    NotFound: HTTPStatus.NOT_FOUND,
    MethodNotAllowed: HTTPStatus.METHOD_NOT_ALLOWED,
    Conflict: HTTPStatus.CONFLICT,
    TooLarge: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    RateLimited: HTTPStatus.TOO_MANY_REQUESTS,
    Unavailable: HTTPStatus.SERVICE_UNAVAILABLE,
    UpstreamFailed: HTTPStatus.BAD_GATEWAY,
}

CRASH_BODY = {
    "error": "internal_error",
    "message": "Something went wrong on our side and it has been logged. Try again, and "
    "quote the x-request-id response header if it keeps happening.",
}

# The codes for statuses the framework raises itself (unknown route, wrong method, ...).
STATUS_CODES: dict[int, str] = {
    HTTPStatus.BAD_REQUEST: "bad_request",
    HTTPStatus.UNAUTHORIZED: "unauthorized",
    HTTPStatus.FORBIDDEN: "forbidden",
    HTTPStatus.NOT_FOUND: "not_found",
    HTTPStatus.METHOD_NOT_ALLOWED: "method_not_allowed",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "payload_too_large",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "unsupported_media_type",
    HTTPStatus.TOO_MANY_REQUESTS: "rate_limited",
    HTTPStatus.INTERNAL_SERVER_ERROR: "internal_error",
}


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": code, "message": message}


def status_for(error: SamError) -> int:
    """The status of `error`'s kind: the nearest class in its tree that has one."""
    for kind in type(error).__mro__:
        if kind in STATUS_FOR:
            return int(STATUS_FOR[kind])
    raise AssertionError(f"{type(error).__name__} is outside the error tree")


def error_reply(error: SamError) -> tuple[int, dict[str, Any], dict[str, str]]:
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited):
        headers["Retry-After"] = str(error.retry_after_seconds)
    if isinstance(error, MethodNotAllowed) and error.allowed:
        headers["Allow"] = ", ".join(error.allowed)
    return status_for(error), error_body(error.code, error.message), headers


def crash_reply(where: str) -> tuple[int, dict[str, Any]]:
    """Our own bug, inside an `except`: its traceback logged once, a JSON 500 to answer."""
    log.exception("request.crashed url=%s", where)
    return HTTPStatus.INTERNAL_SERVER_ERROR, CRASH_BODY


def code_for(status: int) -> str:
    return STATUS_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
