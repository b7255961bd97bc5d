"""Grants the control plane has revoked, and the sockets each grant opened.

A terminal token names its grant: the browser session or API token it was minted under
(worker/auth/grants.py). When the user signs out (or revokes the API token) the control
plane tells the nodes of their workspaces (`POST /grants/revoke`); from then on this agent
refuses tokens of that grant and closes the terminals, boot logs and agent-session viewers
they opened. The edge refuses them on its own as well; this covers what it had already let
through. A grant is remembered only as long as a token of it can still be valid.
"""

import time
import weakref
from collections.abc import Callable

from aiohttp import WSCloseCode, web

from agent.errors import Unauthorized

# A terminal token lives 5 minutes, with 30 s of clock skew allowed on each side.
REMEMBER_SECONDS = 5 * 60 + 2 * 30
CLOSE_MESSAGE = b"signed out: sign in again"


class RevokedGrants:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._revoked: dict[str, float] = {}  # grant → when it may be forgotten
        self._sockets: dict[str, weakref.WeakSet[web.WebSocketResponse]] = {}

    def check(self, grant: str | None) -> None:
        """Refuse a token whose grant was revoked."""
        self._forget_expired()
        if grant is not None and grant in self._revoked:
            raise Unauthorized("the session this token was issued to has signed out: sign in again")

    def opened(self, grant: str | None, ws: web.WebSocketResponse) -> None:
        if grant is not None:
            self._sockets.setdefault(grant, weakref.WeakSet()).add(ws)

    async def revoke(self, grant: str) -> int:
        """Remember `grant` as revoked and close what it opened; the number closed."""
        self._revoked[grant] = self._clock() + REMEMBER_SECONDS
        open_sockets = [ws for ws in self._sockets.pop(grant, ()) if not ws.closed]
        for ws in open_sockets:
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=CLOSE_MESSAGE)
        return len(open_sockets)

    def _forget_expired(self) -> None:
        now = self._clock()
        for grant in [grant for grant, until in self._revoked.items() if until <= now]:
            del self._revoked[grant]
