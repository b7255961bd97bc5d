"""What the log filter keeps out of a line: query values, credentials, JWTs, long headers."""

import logging

from wire.log_redaction import MAX_LOG_LINE_CHARS, REDACTED, RedactingFilter, redact

JWT = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"


def test_query_values_credentials_and_jwts_are_redacted() -> None:
    line = f'127.0.0.1:5 - "WebSocket /workspaces/w/terminal/ws?token={JWT}&cols=80" [accepted]'
    assert redact(line) == (
        f'127.0.0.1:5 - "WebSocket /workspaces/w/terminal/ws?token={REDACTED}&cols={REDACTED}"'
        " [accepted]"
    )
    assert redact("b'Bearer sam_pat_abc'") == f"b'Bearer {REDACTED}'"
    assert redact(f"claims of {JWT} refused") == f"claims of {REDACTED} refused"
    assert redact("request.done method=GET url=http://x/y status=200") == (
        "request.done method=GET url=http://x/y status=200"
    )


def test_a_long_line_is_capped() -> None:
    capped = redact("x" * (MAX_LOG_LINE_CHARS + 500))
    assert capped.startswith("x" * MAX_LOG_LINE_CHARS)
    assert capped.endswith("(500 more characters)")


def test_the_filter_rewrites_message_arguments_and_tracebacks() -> None:
    try:
        raise ValueError(f"Bearer {JWT}")
    except ValueError as exc:
        record = logging.LogRecord(
            "t", logging.ERROR, __file__, 1, "sent %s", (f"?token={JWT}",), (type(exc), exc, None)
        )
    assert RedactingFilter().filter(record)
    assert JWT not in logging.Formatter().format(record)
