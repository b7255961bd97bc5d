"""JavaScript values as they cross between Python and a binding on Cloudflare.

A binding is JavaScript: what Python hands it becomes a JS value, and what it answers comes
back through Pyodide. Three JS rules show in Python and the twin keeps them: there is one
number type (a double), an object put where a string is wanted becomes `String(x)`, and
JS `null` is not Python's `None` (Pyodide hands it over as `pyodide.ffi.jsnull`).
"""

from typing import Any

MAX_SAFE_INTEGER = 2**53 - 1  # larger integers cross as BigInt, or lose precision


class JsNull:
    """JS `null` as Pyodide hands it to Python: falsy, but not `None` (`x is None` misses it)."""

    _instance: "JsNull | None" = None

    def __new__(cls) -> "JsNull":
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "jsnull"


jsnull = JsNull()


def js_number(value: int | float) -> int | float:
    """`value` after a trip through a JS number: Pyodide hands back an int when it is
    integral and safe, a float otherwise (so 2.0 → 2, and 2**53 + 1 → 9007199254740992.0)."""
    number = float(value)
    if number.is_integer() and abs(number) <= MAX_SAFE_INTEGER:
        return int(number)
    return number


def js_string(value: Any) -> str:
    """What JavaScript's `String(value)` gives for the JS value `value` becomes."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _number_string(value)
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        # Array.prototype.join: null and undefined elements read as "".
        return ",".join("" if item is None else js_string(item) for item in value)
    return "[object Object]"


def _number_string(value: int | float) -> str:
    if isinstance(value, int) and abs(value) > MAX_SAFE_INTEGER:
        return str(value)  # a BigInt
    number = js_number(value)
    return str(number) if isinstance(number, int) else repr(number)
