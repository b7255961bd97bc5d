"""The twin of the Workers static-assets binding (`env.ASSETS.fetch`).

Serves files under the configured directory, `/` and `/dir/` as their `index.html`,
and with `not_found_handling = "single-page-application"` answers any other miss with the
root `index.html`, so client-side routes survive a reload.
"""

import hashlib
import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

from twin.http import Request, Response


class AssetsBinding:
    def __init__(self, directory: Path, not_found_handling: str = "none") -> None:
        self._root = directory.resolve()
        self._spa = not_found_handling == "single-page-application"

    async def fetch(self, request: Request | str) -> Response:
        if isinstance(request, str):
            request = Request(request)
        if request._method not in ("GET", "HEAD"):
            return Response("Method Not Allowed", 405, headers={"allow": "GET, HEAD"})
        path = self._find(unquote(urlsplit(request.url).path))
        if path is None and self._spa:
            path = self._find("/index.html")
        if path is None:
            return Response("Not Found", 404)
        content = path.read_bytes()
        etag = '"' + hashlib.sha256(content).hexdigest()[:32] + '"'
        headers = {
            "content-type": mimetypes.guess_type(path.name)[0] or "application/octet-stream",
            "etag": etag,
            "cache-control": "public, max-age=0, must-revalidate",
        }
        if request.headers.get("if-none-match") == etag:
            return Response(None, 304, headers=headers)
        return Response(None if request._method == "HEAD" else content, 200, headers=headers)

    def _find(self, url_path: str) -> Path | None:
        if "\0" in url_path:
            return None  # no file is named with a NUL byte
        try:
            candidate = (self._root / url_path.lstrip("/")).resolve()
            if not candidate.is_relative_to(self._root):
                return None  # a `..` that climbs out of the assets directory
            if candidate.is_dir():
                candidate = candidate / "index.html"
            return candidate if candidate.is_file() else None
        except OSError:
            return None  # a name the file system cannot hold (a segment over 255 bytes)
