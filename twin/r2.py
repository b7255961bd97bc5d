"""The R2 twin: an `R2Bucket` keeping each object, body and metadata, in one SQLite file.

Objects come back as `R2Object` / `R2ObjectBody`, readable by attribute or by name as the
Workers SDK's wrapper allows. `uploaded` is a naive UTC datetime, as the SDK converts a JS
`Date` in workerd (whose clock is UTC). Options are keyword arguments (how Pyodide passes
a JS options object) or, as on Cloudflare, one positional dict.
"""

import hashlib
import json
import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from twin import cursors
from twin.clock import Clock, SystemClock
from twin.errors import R2Error
from twin.js import js_string
from twin.private_files import connect_private
from twin.records import Record

# Cloudflare's limits (developers.cloudflare.com/r2/platform/limits).
MAX_KEY_BYTES = 1024
MAX_VALUE_BYTES = 5 * 1024**3 - 5 * 1024**2  # a single put: 5 GiB less 5 MiB
MAX_CUSTOM_METADATA_BYTES = 2048
MAX_LIST_KEYS = 1000
MAX_DELETE_KEYS = 1000

# R2 error codes, shown in brackets at the end of R2's messages.
_INVALID_OBJECT_NAME = 10020
_METADATA_TOO_LARGE = 10012
_ENTITY_TOO_LARGE = 100100
_INVALID_MAX_KEYS = 10022
_INVALID_ARGUMENT = 10029

_HTTP_METADATA_FIELDS = (
    "contentType",
    "contentLanguage",
    "contentDisposition",
    "contentEncoding",
    "cacheControl",
    "cacheExpiry",
)
_LISTABLE_METADATA = ("httpMetadata", "customMetadata")
# JS null (Python None) is no string: workerd refuses it for these.
_STRING_LIST_OPTIONS = ("prefix", "cursor", "delimiter", "startAfter")
_UNSET: Any = object()  # a list option not given at all

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    key TEXT PRIMARY KEY,  -- BINARY collation: UTF-8 byte order, as R2 lists
    version TEXT NOT NULL,
    size INTEGER NOT NULL,
    etag TEXT NOT NULL,
    uploaded_ms INTEGER NOT NULL,
    http_metadata TEXT NOT NULL,    -- JSON; cacheExpiry in epoch milliseconds
    custom_metadata TEXT NOT NULL,  -- JSON
    body BLOB NOT NULL
)
"""
_META_COLUMNS = "key, version, size, etag, uploaded_ms, http_metadata, custom_metadata"
_PLACEHOLDERS = ", ".join("?" * 8)  # the meta columns and the body


@dataclass(eq=False, kw_only=True)
class R2Object:
    key: str
    version: str
    size: int
    etag: str
    httpEtag: str
    uploaded: datetime
    httpMetadata: Record
    customMetadata: Record
    storageClass: str = "Standard"

    def __getitem__(self, name: str) -> Any:
        # obj["key"] as well as obj.key: the SDK's binding wrapper answers both.
        try:
            return getattr(self, name)
        except AttributeError:
            raise KeyError(name) from None


@dataclass(eq=False, kw_only=True)
class R2ObjectBody(R2Object):
    _body: bytes = field(repr=False)
    bodyUsed: bool = False

    async def arrayBuffer(self) -> memoryview:
        return memoryview(self._consume())  # how Pyodide hands over a JS ArrayBuffer

    async def text(self) -> str:
        # TextDecoder's behaviour: bad UTF-8 becomes U+FFFD rather than an error.
        return self._consume().decode("utf-8", errors="replace")

    async def json(self) -> Any:
        text = await self.text()
        try:
            # JSON objects become Records, as the SDK turns JS objects into attribute-dicts.
            return json.loads(text, object_hook=Record)
        except json.JSONDecodeError as exc:
            raise R2Error(f"The body of {self.key!r} is not valid JSON: {exc}") from exc

    def _consume(self) -> bytes:
        if self.bodyUsed:
            raise R2Error(
                "Body has already been used. It can only be used once. "
                "Use tee() first if you need to read it twice."
            )
        self.bodyUsed = True
        return self._body

    # Last in the class: from here on `bytes` names this method, not the type.
    async def bytes(self) -> memoryview:
        return memoryview(self._consume())


class R2Bucket:
    def __init__(self, path: Path, clock: Clock | None = None) -> None:
        # Built at startup, used from the event loop's thread: the loop serialises access.
        self._conn = connect_private(path, isolation_level=None, check_same_thread=False)
        self._conn.execute("PRAGMA journal_mode = WAL")
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute(_SCHEMA)
        self._clock = clock or SystemClock()

    async def put(
        self,
        key: str,
        value: str | bytes | bytearray | memoryview | None,
        options: dict[str, Any] | None = None,
        *,
        httpMetadata: dict[str, Any] | None = None,
        customMetadata: dict[str, str] | None = None,
    ) -> R2Object:
        opts = _merge(options, httpMetadata=httpMetadata, customMetadata=customMetadata)
        unsupported = sorted(set(opts) - {"httpMetadata", "customMetadata"})
        if unsupported:
            raise R2Error(f"put: the local R2 twin does not support {', '.join(unsupported)}")
        _check_key("put", key)
        data = _body_bytes(value)
        http = _http_metadata_json(opts.get("httpMetadata") or {})
        custom = _custom_metadata_json(opts.get("customMetadata") or {})
        row = (
            key,
            uuid.uuid4().hex,
            len(data),
            hashlib.md5(data).hexdigest(),
            int(self._clock.now() * 1000),
            http,
            custom,
        )
        self._conn.execute(
            f"INSERT OR REPLACE INTO objects ({_META_COLUMNS}, body) VALUES ({_PLACEHOLDERS})",
            (*row, data),
        )
        return R2Object(**_fields(*row))

    async def get(self, key: str) -> R2ObjectBody | None:
        _check_key("get", key)
        row = self._conn.execute(
            f"SELECT {_META_COLUMNS}, body FROM objects WHERE key = ?", (key,)
        ).fetchone()
        if row is None:
            return None
        return R2ObjectBody(**_fields(*row[:-1]), _body=row[-1])

    async def head(self, key: str) -> R2Object | None:
        _check_key("head", key)
        row = self._conn.execute(
            f"SELECT {_META_COLUMNS} FROM objects WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else R2Object(**_fields(*row))

    async def delete(self, keys: str | list[str]) -> None:
        """Delete one key or a list of keys; missing keys are not an error."""
        batch = [keys] if isinstance(keys, str) else keys
        if len(batch) > MAX_DELETE_KEYS:
            raise _error("delete", f"At most {MAX_DELETE_KEYS} keys per call.", _INVALID_ARGUMENT)
        for key in batch:
            _check_key("delete", key)
        self._conn.executemany("DELETE FROM objects WHERE key = ?", [(key,) for key in batch])

    async def list(
        self,
        options: dict[str, Any] | None = None,
        *,
        prefix: str | None = _UNSET,
        limit: int | None = _UNSET,
        cursor: str | None = _UNSET,
        delimiter: str | None = _UNSET,
        startAfter: str | None = _UNSET,
        include: list[str] | None = _UNSET,
    ) -> Record:
        """One page: `{objects, delimitedPrefixes, truncated, cursor (when truncated)}`."""
        # Unlike put's, an explicit None here is JS null, which workerd refuses.
        given = dict(
            prefix=prefix,
            limit=limit,
            cursor=cursor,
            delimiter=delimiter,
            startAfter=startAfter,
            include=include,
        )
        opts = {**(options or {}), **{k: v for k, v in given.items() if v is not _UNSET}}
        if opts.get("include") is None:
            opts.pop("include", None)
        for name in _STRING_LIST_OPTIONS:
            if name in opts and not isinstance(opts[name], str):
                raise R2Error(
                    f"Incorrect type for the '{name}' field on 'ListOptions': "
                    "the provided value is not of type 'string'."
                )
        limit_ = opts.get("limit", MAX_LIST_KEYS)
        if limit_ is None or not 1 <= limit_ <= MAX_LIST_KEYS:
            raise _error(
                "list", "MaxKeys params must be positive integer <= 1000.", _INVALID_MAX_KEYS
            )
        wanted = opts.get("include") or []
        for name in wanted:
            if name not in _LISTABLE_METADATA:
                raise R2Error(f"Unsupported include value {name}")
        page = _Page(opts.get("prefix") or "", opts.get("delimiter") or None, limit_)
        try:
            resume_at = cursors.decode(opts["cursor"]) if "cursor" in opts else ""
        except cursors.InvalidCursor:
            # A cursor R2 never gave: workerd answers with an empty last page.
            return Record(objects=[], truncated=False, delimitedPrefixes=[])
        after = max(resume_at, opts.get("startAfter", ""))
        keys = self._conn.execute(
            "SELECT key FROM objects WHERE key > ? AND key >= ? ORDER BY key",
            (after, page.prefix),
        )
        page.fill((key for (key,) in keys), after)
        objects = [self._listed(key, wanted) for key in page.object_keys]
        result = Record(objects=objects, truncated=page.truncated, delimitedPrefixes=page.prefixes)
        if page.truncated:
            result.cursor = cursors.encode(page.last)
        return result

    def close(self) -> None:
        self._conn.close()

    def _listed(self, key: str, wanted: Collection[str]) -> R2Object:
        row = self._conn.execute(
            f"SELECT {_META_COLUMNS} FROM objects WHERE key = ?", (key,)
        ).fetchone()
        listed = R2Object(**_fields(*row))
        # As R2 does: metadata only when the caller asked for it with `include`.
        for name in _LISTABLE_METADATA:
            if name not in wanted:
                setattr(listed, name, Record())
        return listed


class _Page:
    """Walks sorted keys into one list page, folding keys that share a delimited prefix."""

    def __init__(self, prefix: str, delimiter: str | None, limit: int) -> None:
        self.prefix = prefix
        self.delimiter = delimiter
        self.limit = limit
        self.object_keys: list[str] = []
        self.prefixes: list[str] = []
        self.truncated = False
        self.last = ""  # the page's last entry: where the next page resumes

    def fill(self, sorted_keys: Iterable[str], after: str) -> None:
        # Resuming inside a folded prefix: the previous page already listed it.
        listed_before = self._folded(after)
        for key in sorted_keys:
            if not key.startswith(self.prefix):
                return  # keys sharing a prefix sort together: the rest are past it
            folded = self._folded(key)
            if folded is not None and (folded == listed_before or folded in self.prefixes[-1:]):
                continue
            if len(self.object_keys) + len(self.prefixes) == self.limit:
                self.truncated = True
                return
            if folded is None:
                self.object_keys.append(key)
            else:
                self.prefixes.append(folded)
            self.last = folded or key

    def _folded(self, key: str) -> str | None:
        if self.delimiter is None or not key.startswith(self.prefix):
            return None
        at = key.find(self.delimiter, len(self.prefix))
        return None if at < 0 else key[: at + len(self.delimiter)]


def _merge(options: dict[str, Any] | None, **given: Any) -> dict[str, Any]:
    """One options dict from Cloudflare's positional form and Pyodide's keywords."""
    merged = {name: value for name, value in (options or {}).items() if value is not None}
    merged.update({name: value for name, value in given.items() if value is not None})
    return merged


def _fields(
    key: str,
    version: str,
    size: int,
    etag: str,
    uploaded_ms: int,
    http_metadata: str,
    custom_metadata: str,
) -> dict[str, Any]:
    http = Record(json.loads(http_metadata))
    if "cacheExpiry" in http:
        http.cacheExpiry = _naive_utc(http.cacheExpiry)
    return {
        "key": key,
        "version": version,
        "size": size,
        "etag": etag,
        "httpEtag": f'"{etag}"',
        "uploaded": _naive_utc(uploaded_ms),
        "httpMetadata": http,
        "customMetadata": Record(json.loads(custom_metadata)),
    }


def _naive_utc(epoch_ms: int) -> datetime:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).replace(tzinfo=None)


def _body_bytes(value: str | bytes | bytearray | memoryview | None) -> bytes:
    if value is None:
        data = b""
    elif isinstance(value, str):
        data = value.encode("utf-8")
    elif isinstance(value, bytes | bytearray | memoryview):
        data = bytes(value)
    else:
        raise R2Error(
            f"put: the local R2 twin takes str or bytes values, not {type(value).__name__}"
        )
    if len(data) > MAX_VALUE_BYTES:
        raise _error(
            "put",
            "Your proposed upload exceeds the maximum allowed object size.",
            _ENTITY_TOO_LARGE,
        )
    return data


def _http_metadata_json(http: dict[str, Any]) -> str:
    stored: dict[str, Any] = {}
    for name, value in http.items():
        if name == "cacheExpiry":
            if not isinstance(value, datetime):
                raise R2Error("put: httpMetadata.cacheExpiry must be a datetime")
            aware = value if value.tzinfo else value.replace(tzinfo=UTC)
            stored[name] = int(aware.timestamp() * 1000)
        elif name in _HTTP_METADATA_FIELDS:
            if not isinstance(value, str):
                raise R2Error(f"put: httpMetadata.{name} must be a string")
            stored[name] = value
        # Like a JS options dictionary, unknown fields are ignored.
    return json.dumps(stored)


def _custom_metadata_json(custom: dict[str, Any]) -> str:
    size = 0
    stored = {}
    for name, value in custom.items():
        if not isinstance(name, str):
            raise R2Error(f"put: customMetadata keys must be strings ({name!r})")
        stored[name] = js_string(value)  # a JS record<string, string> converts its values
        size += _serialised_length(name) + _serialised_length(stored[name])
    if size > MAX_CUSTOM_METADATA_BYTES:
        raise _error(
            "put",
            "Your metadata headers exceed the maximum allowed metadata size.",
            _METADATA_TOO_LARGE,
        )
    return json.dumps(stored)


def _serialised_length(text: str) -> int:
    # R2's own accounting: one byte per character, two if any character is above U+00FF.
    return len(text) * 2 if any(ord(c) > 0xFF for c in text) else len(text)


def _check_key(operation: str, key: str) -> None:
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise _error(operation, "The specified object name is not valid.", _INVALID_OBJECT_NAME)


def _error(operation: str, message: str, code: int) -> R2Error:
    return R2Error(f"{operation}: {message} ({code})")
