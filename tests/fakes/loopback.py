"""A loopback HTTP server in a thread of its own: the base of the fakes in this folder.

Sync tests, async tests and other processes (the edge, agents) can all reach it, because
its event loop runs apart from theirs. Subclasses implement `handle(request)` for one
catch-all route, or override `routes(app)` to add their own. Given `tls` (a certificate
and key), it serves https.
"""

import asyncio
import socket
import ssl
import threading
from pathlib import Path
from typing import Any

from aiohttp import web

START_TIMEOUT_SECONDS = 10.0


class LoopbackServer:
    name = "loopback"

    def __init__(self, tls: tuple[Path, Path] | None = None) -> None:
        self.tls = tls  # (certificate, key) to serve https with
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def start(self) -> Any:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # surfaced to start()'s caller below
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            assert self._runner is not None
            loop.run_until_complete(self._runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name=f"fake-{self.name}", daemon=True)
        self._thread.start()
        ready.wait(START_TIMEOUT_SECONDS)
        if errors:
            raise errors[0]
        return self

    def routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{path:.*}", self.handle)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    async def _serve(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        context = None
        if self.tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*self.tls)
        # Port 0 the first time; a server stopped and started again comes back on its port.
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, ssl_context=context)
        await site.start()
        self.port = self._runner.addresses[0][1]

    def serve_socket(self, sock: socket.socket) -> None:
        """Answer on `sock` (listening, e.g. one in a container: tests/support/container_net.py)
        too, from the running server's loop."""
        assert self._loop is not None and self._runner is not None, "start() it first"
        site = web.SockSite(self._runner, sock)
        asyncio.run_coroutine_threadsafe(site.start(), self._loop).result(START_TIMEOUT_SECONDS)

    def stop(self) -> None:
        if self._loop and self._thread:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme != "Bearer" or not token.strip():
        return None
    return token.strip()
