"""The local edge's HTTP/1.1 connection: uvicorn's h11 protocol with Cloudflare's limits.

uvicorn's parsers accept headers of any size when they arrive at once, so the edge refuses
a request whose headers are over MAX_REQUEST_HEADER_BYTES (431), and closes a connection
whose request headers take longer than HEADER_TIMEOUT_SECONDS (a client trickling bytes
would otherwise hold it open). A request h11 cannot parse is answered as the worker answers
every error, `{"error", "message"}`, not with uvicorn's plain text.
"""

import asyncio
import json
import logging
from http import HTTPStatus

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger("sam.local.edge")

# Cloudflare refuses a request whose headers are over 128 KB in total.
MAX_REQUEST_HEADER_BYTES = 128 * 1024
HEADER_TIMEOUT_SECONDS = 10.0
# How long an idle kept-alive connection stays open (uvicorn's default).
KEEP_ALIVE_SECONDS = 5

HEADERS_END = b"\r\n\r\n"
UNPARSEABLE = (
    "The request is not valid HTTP/1.1: a malformed request line, or a header (a Cookie "
    "too) with bytes HTTP does not allow."
)
TOO_LARGE = f"The request headers are over {MAX_REQUEST_HEADER_BYTES // 1024} KB in total."


class EdgeHttpProtocol(H11Protocol):
    """Pass as `uvicorn.Config(http=EdgeHttpProtocol, h11_max_incomplete_event_size=
    MAX_REQUEST_HEADER_BYTES, timeout_keep_alive=KEEP_ALIVE_SECONDS)`."""

    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_headers()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_watching()
        super().connection_lost(exc)

    def handle_events(self) -> None:
        super().handle_events()
        # Headers are in once the client left IDLE; a kept-alive connection is back in IDLE.
        if self.conn.their_state is h11.IDLE:
            self._watch_headers()
        else:
            self._stop_watching()

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE:
            head = self.conn.trailing_data[0] + data
            if (
                len(head) > MAX_REQUEST_HEADER_BYTES
                and HEADERS_END not in head[: MAX_REQUEST_HEADER_BYTES + len(HEADERS_END)]
            ):
                self._refuse(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", TOO_LARGE
                )
                return
        super().data_received(data)

    def send_400_response(self, msg: str) -> None:
        self._refuse(HTTPStatus.BAD_REQUEST, "bad_request", UNPARSEABLE)

    def _refuse(self, status: HTTPStatus, code: str, message: str) -> None:
        """Answer and close, written by hand: h11 may be in no state to send a response."""
        self._stop_watching()
        if self.transport.is_closing():
            return
        body = json.dumps({"error": code, "message": message}).encode()
        head = (
            f"HTTP/1.1 {status.value} {status.phrase}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        self.transport.close()

    def _watch_headers(self) -> None:
        if self._header_deadline is None and not self.transport.is_closing():
            loop = asyncio.get_running_loop()
            self._header_deadline = loop.call_later(HEADER_TIMEOUT_SECONDS, self._too_slow)

    def _stop_watching(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self.conn.trailing_data[0]:  # an idle kept-alive connection is not news
                log.warning("edge.header_timeout seconds=%s", HEADER_TIMEOUT_SECONDS)
            self.transport.close()
