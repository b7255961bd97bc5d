"""The local edge's HTTP/1.1 connection: uvicorn's httptools protocol with Cloudflare's limits.

uvicorn's parsers accept headers of any size, so the edge refuses a request whose headers
are over MAX_REQUEST_HEADER_BYTES (431), and closes a connection whose request headers take
longer than HEADER_TIMEOUT_SECONDS (a client trickling bytes would otherwise hold it open).
A request the parser cannot read is answered as the worker answers every error,
`{"error", "message"}`, not with uvicorn's plain text. httptools, not h11: the pure-Python
parser more than halved the edge's requests per second (bench/bench_edge.py).
"""

import asyncio
import json
import logging
from http import HTTPStatus

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("sam.local.edge")

# Cloudflare refuses a request whose headers are over 128 KB in total.
MAX_REQUEST_HEADER_BYTES = 128 * 1024
HEADER_TIMEOUT_SECONDS = 10.0
# How long an idle kept-alive connection stays open (uvicorn's default).
KEEP_ALIVE_SECONDS = 5

UNPARSEABLE = (
    "The request is not valid HTTP/1.1: a malformed request line, or a header (a Cookie "
    "too) with bytes HTTP does not allow."
)
TOO_LARGE = f"The request headers are over {MAX_REQUEST_HEADER_BYTES // 1024} KB in total."
# Per header line: ": " and CRLF around the name and value.
HEADER_LINE_OVERHEAD = 4


class HeadersTooLarge(Exception):
    """Raised from a parser callback to stop parsing; answered 431."""


class EdgeHttpProtocol(HttpToolsProtocol):
    """Pass as `uvicorn.Config(http=EdgeHttpProtocol, timeout_keep_alive=KEEP_ALIVE_SECONDS)`."""

    _header_deadline: asyncio.TimerHandle | None = None
    _in_head = False  # between a request's first byte and the end of its headers
    _head_bytes = 0
    _too_large = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_watching()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._in_head:
            self._head_bytes += len(data)
            if self._head_bytes > MAX_REQUEST_HEADER_BYTES + len(data):
                # Still no end of headers in the bytes the limit allows: refuse now rather
                # than parse megabytes.
                self._refuse(
                    HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", TOO_LARGE
                )
                return
        super().data_received(data)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_watching()
        size = len(self.url) + sum(
            len(name) + len(value) + HEADER_LINE_OVERHEAD for name, value in self.headers
        )
        if size > MAX_REQUEST_HEADER_BYTES:
            self._too_large = True
            raise HeadersTooLarge  # the parser stops; data_received answers it as a 400 ...
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self._too_large:  # ... which is this 431
            self._refuse(HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", TOO_LARGE)
        else:
            self._refuse(HTTPStatus.BAD_REQUEST, "bad_request", UNPARSEABLE)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._start_head()  # the next request on a kept-alive connection

    def _refuse(self, status: HTTPStatus, code: str, message: str) -> None:
        """Answer and close, written by hand: the parser may be in no state to go on."""
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

    def _start_head(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._stop_watching()
        self._header_deadline = asyncio.get_running_loop().call_later(
            HEADER_TIMEOUT_SECONDS, self._too_slow
        )

    def _stop_watching(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _too_slow(self) -> None:
        self._header_deadline = None
        if self._in_head and not self.transport.is_closing():
            if self._head_bytes:  # an idle kept-alive connection is not news
                log.warning("edge.header_timeout seconds=%s", HEADER_TIMEOUT_SECONDS)
            self.transport.close()
