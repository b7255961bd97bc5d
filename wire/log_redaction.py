"""What no log line may carry, on the edge and on the agent: credentials and long header text.

    redact(text)        → text with query values, Bearer/Basic credentials and JWTs
                          replaced by [redacted], and each line capped at MAX_LOG_LINE_CHARS
    RedactingFilter     a logging filter that applies `redact` to a record's message and
                          its traceback, for loggers we do not write (uvicorn, aiohttp)

Terminal WebSockets carry their token in the query string (`?token=…`), and servers log
request lines and malformed headers as they came, so the filter sits on the handlers.
"""

import logging
import re

REDACTED = "[redacted]"
# Long enough for a traceback line or a key-value event; far shorter than a header.
MAX_LOG_LINE_CHARS = 1000

# A query parameter's value: `?token=abc` → `?token=[redacted]` (names stay, for debugging).
_QUERY_VALUE = re.compile(r"([?&][A-Za-z0-9_.~%-]+=)[^&\s\"'#<>]+")
# An Authorization credential, quoted or not.
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s\"',;]+")
# A JWT anywhere (header.payload.signature, the header always starts `eyJ`).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")


def redact(text: str) -> str:
    text = _QUERY_VALUE.sub(rf"\1{REDACTED}", text)
    text = _CREDENTIAL.sub(rf"\1\2{REDACTED}", text)
    text = _JWT.sub(REDACTED, text)
    return "\n".join(_capped(line) for line in text.split("\n"))


def _capped(line: str) -> str:
    if len(line) <= MAX_LOG_LINE_CHARS:
        return line
    return f"{line[:MAX_LOG_LINE_CHARS]}… ({len(line) - MAX_LOG_LINE_CHARS} more characters)"


class RedactingFilter(logging.Filter):
    """Rewrites each record in place; attach it to a handler so every logger's lines pass."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatters use exc_text when it is set: the traceback is rendered here, redacted.
            record.exc_text = redact(self._formatter.formatException(record.exc_info))
        return True
