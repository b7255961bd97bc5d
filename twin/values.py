"""Structured-clone rules: what may cross an RPC call or be stored, and how it is copied.

Cloudflare copies every RPC argument and result (and every stored value) by value, so the
two sides never share a mutable object. `clone` applies the rules of `workers-runtime-sdk`
(`_raise_on_disabled_type` in `workers/rpc.py`) and returns what the other side sees:
dicts arrive as `Record`s (the SDK's `JsDict`), datetimes as naive UTC at millisecond
precision (a JS `Date` read back on Workers, whose local zone is UTC).

Stored values are pickles of cloned values. Pickle keeps every allowed type exactly (int
vs float, bytes, datetime, nesting) with no escaping scheme to get wrong, and the files
are private to the local edge; `loads` still refuses any class outside the clone rules.
"""

import datetime
import inspect
import io
import pickle
from typing import Any

from twin.records import Record

_EPOCH = datetime.datetime(1970, 1, 1)
_EPOCH_UTC = _EPOCH.replace(tzinfo=datetime.UTC)
_MILLISECOND = datetime.timedelta(milliseconds=1)
_IMMUTABLE = frozenset({type(None), bool, int, float, str, bytes})
# The only classes a stored pickle may name: exactly what `clone` produces.
_PICKLE_CLASSES = frozenset({("datetime", "datetime"), ("twin.records", "Record")})


def clone(value: Any) -> Any:
    """A deep copy of `value` as the receiving side of an RPC call would see it.

    Raises TypeError, with Cloudflare's wording where it has one, for anything that
    cannot be sent.
    """
    kind = type(value)
    if kind in _IMMUTABLE:
        return value
    if kind is list:
        return [clone(item) for item in value]
    if isinstance(value, dict):
        return Record({_key(key): clone(item) for key, item in value.items()})
    if isinstance(value, datetime.datetime):
        return _clone_datetime(value)
    return _clone_other(value)


def dumps(value: Any) -> bytes:
    """`value` serialized for storage (cloned first, so the same rules apply)."""
    return pickle.dumps(clone(value), protocol=pickle.HIGHEST_PROTOCOL)


def loads(data: bytes) -> Any:
    return _CloneUnpickler(io.BytesIO(data)).load()


def _clone_other(value: Any) -> Any:
    # Subclasses (StrEnum, IntEnum, ...) cross as their base JS value.
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (tuple, bytearray)):
        raise TypeError(f"{type(value)} cannot be sent over RPC.")
    if isinstance(value, list):
        return [clone(item) for item in value]
    if inspect.isawaitable(value):
        raise TypeError(f"Awaitable {type(value)} cannot be sent over RPC.")
    if callable(value):
        # Cloudflare passes functions as RPC stubs; the local twin does not.
        raise TypeError(f"{type(value)} cannot be sent over RPC by the local runtime.")
    raise TypeError(
        f'Could not serialize object of type "{type(value).__name__}". '
        "This type does not support serialization."
    )


def _key(key: Any) -> str:
    if isinstance(key, str):
        return str(key)
    # The SDK turns keys into JS property names; a non-string key would come back changed.
    raise TypeError(f"dict keys sent over RPC must be str, not {type(key).__name__}")


def _clone_datetime(value: datetime.datetime) -> datetime.datetime:
    aware = value if value.tzinfo is not None else value.replace(tzinfo=datetime.UTC)
    milliseconds = (aware - _EPOCH_UTC) // _MILLISECOND
    return _EPOCH + milliseconds * _MILLISECOND


class _CloneUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _PICKLE_CLASSES:
            raise pickle.UnpicklingError(f"stored value names a foreign class {module}.{name}")
        return super().find_class(module, name)
