"""How long a browser keeps the web app's files.

The build names every file under /assets/ by a hash of its content (Vite), so a name never
points at other bytes: the browser keeps it a year and never asks again (`immutable`), and
a page load costs no revalidation round trip per script. Everything else (index.html, the
SPA's routes, favicon.svg) keeps the binding's own `max-age=0, must-revalidate`, so a deploy
shows at the next load. A missing /assets/ file answered with index.html (the SPA fallback)
is not a hashed file and is never kept.
"""

HASHED_ASSETS_PREFIX = "/assets/"
IMMUTABLE = "public, max-age=31536000, immutable"


def asset_cache_headers(path: str, status: int, content_type: str) -> dict[str, str]:
    """The caching header to set on the app's file at `path`, if any, e.g.
    asset_cache_headers("/assets/index-Xo32sx3L.js", 200, "text/javascript") ->
    {"cache-control": "public, max-age=31536000, immutable"}."""
    is_hashed_file = path.startswith(HASHED_ASSETS_PREFIX) and not content_type.startswith(
        "text/html"
    )
    if status in (200, 304) and is_hashed_file:
        return {"cache-control": IMMUTABLE}
    return {}
