"""A git server on loopback: real `git http-backend` (smart HTTP) behind a CGI shim.

A cloud node clones by URL (a local path means nothing on a VM), so the end-to-end test
needs a repository that `git clone http://127.0.0.1:PORT/<name>.git` reaches, the way a
node reaches GitHub. Repositories are bare copies made with `publish(path)`.

Given `access` (the loopback GitHub's `git_access`), it authenticates as GitHub's git
endpoint does: HTTP Basic with an installation token as the password (user
`x-access-token`), 401 with a Basic challenge without one, 404 for a repository the token
does not reach, 403 for a push with a token that may only read. Repositories are then
published as `{owner}/{name}.git`.
"""

import asyncio
import base64
import binascii
import subprocess
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

CGI_TIMEOUT_SECONDS = 60


class GitServer(LoopbackServer):
    name = "git"

    def __init__(
        self, root: Path, access: Callable[[str | None, str, bool], int] | None = None
    ) -> None:
        super().__init__()
        self.root = root
        self.access = access  # (token, "owner/name", is_push) → 200, 401, 403 or 404
        self.requests: list[str] = []

    def publish(self, repo: Path, owner: str | None = None) -> str:
        """A bare copy of `repo` under the server's root (in `owner/` if given); its clone
        URL. The bare directory is `bare_path(url)`."""
        folder = self.root / owner if owner else self.root
        folder.mkdir(parents=True, exist_ok=True)
        bare = folder / f"{repo.name}.git"
        subprocess.run(
            ["git", "clone", "--quiet", "--bare", str(repo), str(bare)],
            check=True,
            capture_output=True,
        )
        return f"{self.url}/{bare.relative_to(self.root)}"

    def bare_path(self, url: str) -> Path:
        return self.root / url.removeprefix(self.url + "/")

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
        if self.access is not None:
            refused = self._refusal(request)
            if refused is not None:
                return refused
        environ = {
            "PATH": "/usr/bin:/bin",
            "GIT_PROJECT_ROOT": str(self.root),
            "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": request.method,
            "PATH_INFO": request.path,
            "QUERY_STRING": request.query_string,
            "CONTENT_TYPE": request.headers.get("Content-Type", ""),
            "HTTP_CONTENT_ENCODING": request.headers.get("Content-Encoding", ""),
            "REMOTE_ADDR": request.remote or "127.0.0.1",
            "GIT_PROTOCOL": request.headers.get("Git-Protocol", ""),
        }
        if self.access is not None:
            # http-backend serves pushes only to an authenticated user (http.receivepack).
            environ["REMOTE_USER"] = "x-access-token"
        body = await request.read()
        process = await asyncio.create_subprocess_exec(
            "git",
            "http-backend",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=environ,
        )
        output, _ = await asyncio.wait_for(process.communicate(body), CGI_TIMEOUT_SECONDS)
        head, _, payload = output.partition(b"\r\n\r\n")
        status, headers = 200, {}
        for line in head.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = int(value.strip().split()[0])
            elif name:
                headers[name.strip()] = value.strip()
        return web.Response(status=status, body=payload, headers=headers)

    def _refusal(self, request: web.Request) -> web.Response | None:
        assert self.access is not None
        owner, _, rest = request.path.lstrip("/").partition("/")
        name = rest.split("/", 1)[0].removesuffix(".git")
        push = request.query.get("service") == "git-receive-pack" or request.path.endswith(
            "/git-receive-pack"
        )
        status = self.access(_basic_password(request), f"{owner}/{name}", push)
        if status == 200:
            return None
        if status == 401:
            return web.Response(
                status=401,
                text="Invalid username or token.",
                headers={"WWW-Authenticate": 'Basic realm="GitHub"'},
            )
        if status == 403:
            return web.Response(status=403, text=f"Permission to {owner}/{name}.git denied.")
        return web.Response(status=404, text="Repository not found.")


def _basic_password(request: web.Request) -> str | None:
    scheme, _, encoded = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return password or user  # GitHub takes the token as the password or as the user
