"""The API's one error type, and the one place errors become JSON.

    ApiError(status, code, message)      raised by handlers for anyone else's mistake
    └── turned into {"error": code, "message": message} by `error_response`

Anything else a handler raises is our own bug: the API logs it with its traceback and
answers a 500 in the same shape, without details.
"""

from http import HTTPStatus
from typing import Any


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers  # e.g. Retry-After on a 429


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": code, "message": message}


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


def code_for(status: int) -> str:
    return STATUS_CODES.get(status) or HTTPStatus(status).phrase.lower().replace(" ", "_")
