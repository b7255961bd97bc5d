"""The ACP fs/* methods: files read and written in the container, as the session's user,
with the container's view of paths (absolute paths only)."""

from __future__ import annotations

import acp
from acp.schema import ReadTextFileResponse, WriteTextFileResponse

from agent.sessions.container import Launcher

MAX_READ_FILE_BYTES = 10 * 1024 * 1024


async def read_text_file(
    launcher: Launcher, path: str, line: int | None, limit: int | None
) -> ReadTextFileResponse:
    """Lines `line` (1-based) to `line + limit` of the file, or all of it."""
    _require_absolute(path)
    argv = ["head", "-c", str(MAX_READ_FILE_BYTES + 1), "--", path]
    code, out, _ = await launcher.run(argv)
    if code != 0:
        raise acp.RequestError.resource_not_found(path)
    if len(out) > MAX_READ_FILE_BYTES:
        details = f"{path} is over {MAX_READ_FILE_BYTES} bytes"
        raise acp.RequestError.invalid_params({"details": details})
    lines = out.decode("utf-8", "replace").splitlines(keepends=True)
    first = max((line or 1) - 1, 0)
    chosen = lines[first : first + limit] if limit is not None else lines[first:]
    return ReadTextFileResponse(content="".join(chosen))


async def write_text_file(launcher: Launcher, path: str, content: str) -> WriteTextFileResponse:
    _require_absolute(path)
    argv = ["sh", "-c", 'cat > "$1"', "sam-write", path]
    code, _, err = await launcher.run(argv, stdin=content.encode())
    if code != 0:
        details = err.decode("utf-8", "replace")[-1000:]
        raise acp.RequestError.internal_error({"details": details})
    return WriteTextFileResponse()


def _require_absolute(path: str) -> None:
    if not path.startswith("/"):
        raise acp.RequestError.invalid_params({"details": f"{path!r} is not an absolute path"})
