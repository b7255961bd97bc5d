"""Key-value log lines that carry the request id of the request they belong to."""

import contextvars
import logging
import re
import secrets

request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# An id a client or Cloudflare sends is kept only if it is short and plain.
_CLIENT_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")


def new_request_id(offered: str | None) -> str:
    if offered and _CLIENT_ID.fullmatch(offered):
        return offered
    return secrets.token_hex(8)


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: object) -> None:
    """Log `name key=value ...`, e.g. `request.done status=200 ms=1.2`."""
    if logger.isEnabledFor(level):
        logger.log(level, " ".join([name, *(f"{k}={v}" for k, v in fields.items())]))
