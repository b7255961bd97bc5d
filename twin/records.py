"""Plain JavaScript objects as Python sees them here.

On Cloudflare, a binding's result (a D1 row, `meta`, a KV list page) crosses into Python
as a dict. Locally the same values are `Record`s: dicts that also answer attribute access,
so code written against either style reads the same data.
"""

from typing import Any


class Record(dict[str, Any]):
    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value
