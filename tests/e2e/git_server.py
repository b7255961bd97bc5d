"""A git server on loopback: real `git http-backend` (smart HTTP) behind a CGI shim.

A cloud node clones by URL (a local path means nothing on a VM), so the end-to-end test
needs a repository that `git clone http://127.0.0.1:PORT/<name>.git` reaches, the way a
node reaches GitHub. Repositories are bare copies made with `publish(path)`.
"""

import asyncio
import subprocess
from pathlib import Path

from aiohttp import web

from tests.fakes.loopback import LoopbackServer

CGI_TIMEOUT_SECONDS = 60


class GitServer(LoopbackServer):
    name = "git"

    def __init__(self, root: Path) -> None:
        super().__init__()
        self.root = root
        self.requests: list[str] = []

    def publish(self, repo: Path) -> str:
        """A bare copy of `repo` under the server's root; its clone URL."""
        self.root.mkdir(parents=True, exist_ok=True)
        bare = self.root / f"{repo.name}.git"
        subprocess.run(
            ["git", "clone", "--quiet", "--bare", str(repo), str(bare)],
            check=True,
            capture_output=True,
        )
        return f"{self.url}/{bare.name}"

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.requests.append(f"{request.method} {request.path}")
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
