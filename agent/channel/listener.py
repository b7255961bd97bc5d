"""The per-workspace listeners and the one check every request passes.

One aiohttp application serves every workspace: each workspace gets its own socket (a site
of the same runner) bound to its network's gateway address, and the guard finds the
workspace by the address the request arrived on. A request is let through only when it
comes from that workspace's subnet AND carries that workspace's token
(`Authorization: Bearer <t>`, or `x-api-key: <t>` as the Anthropic SDK sends it); then
`request[WORKSPACE_ID]` names the workspace for the mounted services.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import ipaddress
import logging
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from agent.channel.tokens import Stored, TokenStore, new_token
from agent.errors import AgentError, Forbidden, NotFound, Unauthorized

log = logging.getLogger("agent.channel")

WORKSPACE_ID = web.RequestKey("workspace_id", str)
CHANNELS_DIRNAME = "channels"
MAX_CHANNEL_BODY_BYTES = 32 * 1024 * 1024  # model requests carry whole conversations


@dataclass(frozen=True)
class WorkspaceChannel:
    workspace_id: str
    host: str
    port: int
    token: str
    subnet: str

    def url(self, path: str = "") -> str:
        return f"http://{self.host}:{self.port}{path}"

    def __repr__(self) -> str:  # never the token, whoever logs this
        return f"WorkspaceChannel({self.workspace_id!r}, {self.url()!r}, subnet={self.subnet!r})"


class Channels:
    """Every open workspace channel of this agent, and the services mounted on them."""

    def __init__(
        self, services: Mapping[str, web.Application], state_dir: Path | None = None
    ) -> None:
        self.app = web.Application(
            middlewares=[_error_boundary, self._guard], client_max_size=MAX_CHANNEL_BODY_BYTES
        )
        self.app.router.add_get("/whoami", whoami)
        for prefix, service in services.items():
            self.app.add_subapp(prefix, service)
        self._tokens = TokenStore(state_dir / CHANNELS_DIRNAME) if state_dir else None
        self._runner: web.AppRunner | None = None
        self._open: dict[str, tuple[WorkspaceChannel, web.SockSite]] = {}
        # Workspaces come up concurrently; the runner is set up once, sites one at a time.
        self._lock = asyncio.Lock()
        self._by_address: dict[tuple[str, int], WorkspaceChannel] = {}

    async def open(self, workspace_id: str, *, host: str, subnet: str) -> WorkspaceChannel:
        """Listen for `workspace_id` on `host` (its network's gateway), accepting `subnet`.

        Idempotent; after an agent restart the stored token (and port, when still free) is
        used again, so what runs in the workspace keeps working."""
        async with self._lock:
            return await self._open_one(workspace_id, host, subnet)

    async def _open_one(self, workspace_id: str, host: str, subnet: str) -> WorkspaceChannel:
        current = self._open.get(workspace_id)
        if current and (current[0].host, current[0].subnet) == (host, subnet):
            return current[0]
        await self._close_one(workspace_id, forget=False)
        stored = self._tokens.load(workspace_id) if self._tokens else None
        sock = _bind(host, stored.port if stored else 0)
        token = stored.token if stored else new_token()
        channel = WorkspaceChannel(workspace_id, host, sock.getsockname()[1], token, subnet)
        if self._tokens:
            self._tokens.save(workspace_id, Stored(token, channel.port))
        site = web.SockSite(await self._started(), sock)
        await site.start()
        self._open[workspace_id] = (channel, site)
        self._by_address[(host, channel.port)] = channel
        log.info("channel.opened workspace_id=%s url=%s", workspace_id, channel.url())
        return channel

    def get(self, workspace_id: str) -> WorkspaceChannel | None:
        current = self._open.get(workspace_id)
        return current[0] if current else None

    async def close(self, workspace_id: str, *, forget: bool = True) -> None:
        """Stop listening for `workspace_id`; `forget` (the workspace is deleted) also
        forgets its token, so no later channel accepts it."""
        async with self._lock:
            await self._close_one(workspace_id, forget=forget)

    async def _close_one(self, workspace_id: str, *, forget: bool) -> None:
        current = self._open.pop(workspace_id, None)
        if current is not None:
            channel, site = current
            self._by_address.pop((channel.host, channel.port), None)
            await site.stop()
            log.info("channel.closed workspace_id=%s", workspace_id)
        if forget and self._tokens:
            self._tokens.forget(workspace_id)

    async def shutdown(self) -> None:
        """The agent stops: close every listener, keep the tokens for its restart."""
        for workspace_id in list(self._open):
            await self.close(workspace_id, forget=False)
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _started(self) -> web.AppRunner:
        if self._runner is None:
            self._runner = web.AppRunner(self.app, handle_signals=False, access_log=None)
            await self._runner.setup()
        return self._runner

    @web.middleware
    async def _guard(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        channel = self._channel_of(request)
        if channel is None:
            raise NotFound("this channel is closed: its workspace was deleted")
        peer = request.remote or ""
        if not _in_subnet(peer, channel.subnet):
            log.warning("channel.refused workspace_id=%s peer=%s", channel.workspace_id, peer)
            raise Forbidden("this channel serves only its own workspace's network")
        if not _token_matches(request, channel.token):
            raise Unauthorized(
                "send this workspace's channel token as Authorization: Bearer <token> "
                "or x-api-key: <token>"
            )
        request[WORKSPACE_ID] = channel.workspace_id
        return await handler(request)

    def _channel_of(self, request: web.Request) -> WorkspaceChannel | None:
        sockname = request.transport.get_extra_info("sockname") if request.transport else None
        if not sockname:
            return None
        return self._by_address.get((sockname[0], sockname[1]))


async def whoami(request: web.Request) -> web.Response:
    """Which workspace the channel took the caller for: lets a workspace check its channel."""
    return web.json_response({"workspace_id": request[WORKSPACE_ID]})


@web.middleware
async def _error_boundary(request: web.Request, handler: Handler) -> web.StreamResponse:
    """The channel's one error boundary (it is a server apart from the agent's API)."""
    try:
        return await handler(request)
    except AgentError as exc:
        return web.json_response({"error": exc.code, "message": exc.message}, status=exc.status)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = exc.reason.lower().replace(" ", "_")
        return web.json_response({"error": code, "message": exc.text or ""}, status=exc.status)


def _bind(host: str, port: int) -> socket.socket:
    """A socket bound to host:port, else to a free port (the stored one was taken)."""
    try:
        return _bound(host, port)
    except OSError:
        if not port:
            raise
        log.warning("channel.port_taken host=%s port=%d: using another", host, port)
        return _bound(host, 0)


def _bound(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def _in_subnet(peer: str, subnet: str) -> bool:
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(peer) in ipaddress.ip_network(subnet, strict=False)
    return False


def _token_matches(request: web.Request, token: str) -> bool:
    authorization = request.headers.get("Authorization", "")
    scheme, _, bearer = authorization.partition(" ")
    offered = bearer.strip() if scheme.lower() == "bearer" else request.headers.get("x-api-key")
    return offered is not None and hmac.compare_digest(offered.encode(), token.encode())
