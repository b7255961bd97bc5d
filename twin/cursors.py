"""Opaque list cursors for KV and R2: the last key of a page, in URL-safe base64."""

import base64
import binascii


class InvalidCursor(ValueError):
    pass


def encode(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode("utf-8")).decode("ascii")


def decode(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor.encode("ascii")).decode("utf-8")
    except (binascii.Error, UnicodeError) as exc:
        raise InvalidCursor(f"Invalid cursor {cursor!r}.") from exc
