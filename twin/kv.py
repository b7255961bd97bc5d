"""The KV twin: a `KVNamespace` in one SQLite file, expiring keys on an injected clock.

Keys list in UTF-8 byte order, as KV lists them; an expired key is gone from `get` and
`list` as soon as the clock passes its expiration. Options are keyword arguments (how
Pyodide passes a JS options object) or, as on Cloudflare, one positional dict. Values and
errors are what workerd's KV shows through the SDK: an "arrayBuffer" is a memoryview, a
number is stored as its JS string, and a list's errors say GET (a list is a GET request).
"""

import json
from pathlib import Path
from typing import Any

from twin import cursors
from twin.clock import Clock
from twin.errors import KVError
from twin.js import js_string
from twin.private_files import connect_private
from twin.records import Record

# Cloudflare's limits (developers.cloudflare.com/kv/platform/limits).
MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 25 * 1024 * 1024
MAX_METADATA_BYTES = 1024
MIN_EXPIRATION_TTL_SECONDS = 60
MIN_CACHE_TTL_SECONDS = 30
MAX_LIST_KEYS = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY,  -- BINARY collation: UTF-8 byte order
    value BLOB NOT NULL,
    expiration INTEGER,    -- epoch seconds; NULL never expires
    metadata TEXT          -- JSON; NULL when none was given
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_expiration ON kv (expiration) WHERE expiration IS NOT NULL;
"""
_LIVE = "(expiration IS NULL OR expiration > :now)"


class KVNamespace:
    def __init__(self, path: Path, clock: Clock) -> None:
        # Built at startup, used from the event loop's thread: the loop serialises access.
        self._conn = connect_private(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(_SCHEMA)
        self._clock = clock

    async def get(
        self,
        key: str,
        options: str | dict[str, Any] | None = None,
        *,
        type: str | None = None,
        cacheTtl: int | None = None,
    ) -> Any:
        """The value as `type` ("text", "json" or "arrayBuffer" → bytes), or None."""
        found = self._read(key, _merge(options, type=type, cacheTtl=cacheTtl))
        return None if found is None else found[0]

    async def getWithMetadata(
        self,
        key: str,
        options: str | dict[str, Any] | None = None,
        *,
        type: str | None = None,
        cacheTtl: int | None = None,
    ) -> Record:
        found = self._read(key, _merge(options, type=type, cacheTtl=cacheTtl))
        value, metadata = found if found is not None else (None, None)
        return Record(value=value, metadata=metadata, cacheStatus=None)

    async def put(
        self,
        key: str,
        value: str | bytes | bytearray | memoryview | float,
        options: dict[str, Any] | None = None,
        *,
        expiration: int | None = None,
        expirationTtl: int | None = None,
        metadata: Any = None,
    ) -> None:
        opts = _merge(
            options, expiration=expiration, expirationTtl=expirationTtl, metadata=metadata
        )
        _check_key("PUT", key)
        now = int(self._clock.now())
        expires_at = _expires_at(now, opts.get("expirationTtl"), opts.get("expiration"))
        metadata_json = None if opts.get("metadata") is None else _metadata_json(opts["metadata"])
        data = _value_bytes(value)
        self._conn.execute(
            "INSERT OR REPLACE INTO kv (key, value, expiration, metadata) VALUES (?, ?, ?, ?)",
            (key, data, expires_at, metadata_json),
        )
        # Expired keys are invisible already; dropping them here keeps the file small.
        self._conn.execute("DELETE FROM kv WHERE expiration <= ?", (now,))

    async def delete(self, key: str) -> None:
        _check_key("DELETE", key)
        self._conn.execute("DELETE FROM kv WHERE key = ?", (key,))

    async def list(
        self,
        options: dict[str, Any] | None = None,
        *,
        prefix: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Record:
        """One page of keys: `{keys, list_complete, cursor (when not complete)}`."""
        opts = _merge(options, prefix=prefix, limit=limit, cursor=cursor)
        prefix_ = opts.get("prefix") or ""
        limit_ = _page_size(opts.get("limit"))
        _check_key_length("GET", prefix_)
        after = _resume_after(opts.get("cursor"))
        if after is None:
            return Record(keys=[], list_complete=True, cacheStatus=None)
        rows = self._conn.execute(
            f"""SELECT key, expiration, metadata FROM kv
                WHERE key > :after AND key >= :prefix
                  AND substr(key, 1, length(:prefix)) = :prefix AND {_LIVE}
                ORDER BY key LIMIT :limit""",
            {
                "after": after,
                "prefix": prefix_,
                "now": self._clock.now(),
                "limit": limit_ + 1,  # one more tells whether another page exists
            },
        ).fetchall()
        keys = [_key_entry(*row) for row in rows[:limit_]]
        if len(rows) <= limit_:
            return Record(keys=keys, list_complete=True, cacheStatus=None)
        cursor_ = cursors.encode(keys[-1].name)
        return Record(keys=keys, list_complete=False, cursor=cursor_, cacheStatus=None)

    def close(self) -> None:
        self._conn.close()

    def _read(self, key: str, options: dict[str, Any]) -> tuple[Any, Any] | None:
        _check_key("GET", key)
        cache_ttl = options.get("cacheTtl")
        if cache_ttl is not None and cache_ttl < MIN_CACHE_TTL_SECONDS:
            raise _error(
                "GET",
                400,
                f"Invalid cache_ttl of {cache_ttl}. "
                f"Cache TTL must be at least {MIN_CACHE_TTL_SECONDS}.",
            )
        as_type = options.get("type") or "text"
        row = self._conn.execute(
            f"SELECT value, metadata FROM kv WHERE key = :key AND {_LIVE}",
            {"key": key, "now": self._clock.now()},
        ).fetchone()
        if row is None:
            return None
        value, metadata = row
        return _decode(value, as_type), None if metadata is None else _from_json(metadata)


def _merge(options: str | dict[str, Any] | None, **given: Any) -> dict[str, Any]:
    """One options dict from Cloudflare's positional form and Pyodide's keywords."""
    if isinstance(options, str):
        options = {"type": options}
    merged = {name: value for name, value in (options or {}).items() if value is not None}
    merged.update({name: value for name, value in given.items() if value is not None})
    return merged


def _decode(value: bytes, as_type: str) -> Any:
    if as_type == "arrayBuffer":
        return memoryview(value)  # how Pyodide hands over a JS ArrayBuffer
    # TextDecoder's behaviour: bad UTF-8 becomes U+FFFD rather than an error.
    text = value.decode("utf-8", errors="replace")
    if as_type == "text":
        return text
    if as_type == "json":
        try:
            return _from_json(text)
        except json.JSONDecodeError as exc:
            raise KVError(f"KV GET failed: the value is not valid JSON: {exc}") from exc
    if as_type == "stream":
        raise KVError('The local KV twin does not serve type "stream"; use "arrayBuffer".')
    raise KVError(
        'Unknown response type. Possible types are "text", "arrayBuffer", "json", and "stream".'
    )


def _from_json(text: str) -> Any:
    # JSON objects become Records, as the SDK turns JS objects into attribute-dicts.
    return json.loads(text, object_hook=Record)


def _check_key(operation: str, key: str) -> None:
    # workerd refuses these itself (a TypeError), before any request to KV.
    if key == "":
        raise KVError("Key name cannot be empty.")
    if key in (".", ".."):
        raise KVError(f'"{key}" is not allowed as a key name.')
    _check_key_length(operation, key)


def _check_key_length(operation: str, key: str) -> None:
    size = len(key.encode("utf-8"))
    if size > MAX_KEY_BYTES:
        raise _error(
            operation,
            414,
            f"UTF-8 encoded length of {size} exceeds key length limit of {MAX_KEY_BYTES}.",
        )


def _page_size(limit: float | None) -> int:
    # workerd lists a whole page for a limit below 1 and truncates a fractional one.
    if limit is None or limit < 1:
        return MAX_LIST_KEYS
    if limit > MAX_LIST_KEYS:
        raise _error(
            "GET",
            400,
            f"Invalid key_count_limit of {limit}. "
            f"Please specify an integer less than {MAX_LIST_KEYS}.",
        )
    return int(limit)


def _expires_at(now: int, ttl: int | None, expiration: int | None) -> int | None:
    if ttl is not None:
        ttl = int(ttl)
        if ttl <= 0:
            raise _error(
                "PUT",
                400,
                f"Invalid expiration_ttl of {ttl}. Please specify integer greater than 0.",
            )
        if ttl < MIN_EXPIRATION_TTL_SECONDS:
            raise _error(
                "PUT",
                400,
                f"Invalid expiration_ttl of {ttl}. "
                f"Expiration TTL must be at least {MIN_EXPIRATION_TTL_SECONDS}.",
            )
        return now + ttl
    if expiration is None:
        return None
    expiration = int(expiration)
    if expiration <= now:
        raise _error(
            "PUT",
            400,
            f"Invalid expiration of {expiration}. Please specify integer greater than the "
            "current number of seconds since the UNIX epoch.",
        )
    if expiration < now + MIN_EXPIRATION_TTL_SECONDS:
        raise _error(
            "PUT",
            400,
            f"Invalid expiration of {expiration}. Expiration times must be at least "
            f"{MIN_EXPIRATION_TTL_SECONDS} seconds in the future.",
        )
    return expiration


def _metadata_json(metadata: Any) -> str:
    try:
        text = json.dumps(metadata, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise _error("PUT", 400, f"Metadata is not serializable as JSON: {exc}") from exc
    size = len(text.encode("utf-8"))
    if size > MAX_METADATA_BYTES:
        raise _error(
            "PUT", 413, f"Metadata length of {size} exceeds limit of {MAX_METADATA_BYTES}."
        )
    return text


def _value_bytes(value: str | bytes | bytearray | memoryview | float) -> bytes:
    if isinstance(value, str | int | float):  # bool is an int: "true" / "false"
        data = js_string(value).encode("utf-8")
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
    else:
        raise KVError(
            "KV put() accepts only strings, ArrayBuffers, ArrayBufferViews, and "
            "ReadableStreams as values."
        )
    if len(data) > MAX_VALUE_BYTES:
        raise _error("PUT", 413, f"Value length of {len(data)} exceeds limit of {MAX_VALUE_BYTES}.")
    return data


def _key_entry(name: str, expiration: int | None, metadata: str | None) -> Record:
    entry = Record(name=name)
    if expiration is not None:
        entry.expiration = expiration
    if metadata is not None:
        entry.metadata = _from_json(metadata)
    return entry


def _error(operation: str, status: int, message: str) -> KVError:
    return KVError(f"KV {operation} failed: {status} {message}")


def _resume_after(cursor: str | None) -> str | None:
    """The key a page starts after; None for a cursor KV never gave, which workerd answers
    with an empty last page rather than an error."""
    if not cursor:
        return ""
    try:
        return cursors.decode(cursor)
    except cursors.InvalidCursor:
        return None
