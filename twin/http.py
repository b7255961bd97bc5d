"""`Request`, `Response` and outbound `fetch`, as the `workers` SDK shapes them.

Bodies are held as bytes, or as an async iterator of bytes for a streamed response (the
local stand-in for a JS ReadableStream). Outbound `fetch` goes through one aiohttp
session per event loop; a request carrying `Upgrade: websocket` opens an upstream
WebSocket and answers `101` with one end of a `WebSocketPair`, as workerd does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from http import HTTPMethod, HTTPStatus
from typing import Any

from twin import upstream
from twin.js import jsnull
from twin.tls_trust import verification_for

NULL_BODY_STATUSES = frozenset({101, 204, 205, 304})
DECODED_HEADERS = frozenset({"content-encoding", "content-length", "transfer-encoding"})

Body = str | bytes | AsyncIterator[bytes] | None
HeadersInit = Mapping[str, str] | Iterable[tuple[str, str]] | None


class Headers:
    """Case-insensitive, multi-valued headers, as the SDK hands them to Python.

    The SDK gives an `http.client.HTTPMessage`; this keeps its observable behaviour (a
    missing name reads as None, `headers[name] = v` adds a value, `del` removes them all)
    without the email-parsing machinery, which costs more than the rest of a request.
    """

    __slots__ = ("_items",)

    def __init__(self, items: list[tuple[str, str]] | None = None) -> None:
        self._items = items if items is not None else []

    @classmethod
    def of(cls, init: HeadersInit) -> Headers:
        if isinstance(init, Headers):
            return cls(list(init._items))
        pairs = init.items() if isinstance(init, Mapping) else (init or ())
        return cls([(name, value.strip()) for name, value in pairs])

    def get(self, name: str, default: Any = None) -> Any:
        name = name.lower()
        for key, value in self._items:
            if key.lower() == name:
                return value
        return default

    def get_all(self, name: str, default: Any = None) -> list[str] | Any:
        name = name.lower()
        values = [value for key, value in self._items if key.lower() == name]
        return values or default

    def __getitem__(self, name: str) -> str | None:
        return self.get(name)

    def __setitem__(self, name: str, value: str) -> None:
        self._items.append((name, value))

    add_header = __setitem__

    def __delitem__(self, name: str) -> None:
        name = name.lower()
        self._items = [(key, value) for key, value in self._items if key.lower() != name]

    def replace_header(self, name: str, value: str) -> None:
        del self[name]
        self[name] = value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __iter__(self) -> Iterator[str]:
        return (key for key, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def keys(self) -> list[str]:
        return [key for key, _ in self._items]

    def values(self) -> list[str]:
        return [value for _, value in self._items]

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


class _Body:
    """What `Request` and `Response` share: a body that can be read once."""

    _body: Body
    body_used: bool = False

    async def bytes(self) -> bytes:
        if self.body_used:
            raise OSError("Body already used")
        self.body_used = True
        body = self._body
        if body is None:
            return b""
        if isinstance(body, str):
            return body.encode()
        if isinstance(body, bytes):
            return body
        return b"".join([chunk async for chunk in body])

    async def text(self) -> str:
        return (await self.bytes()).decode()

    async def json(self, **kwargs: Any) -> Any:
        return json.loads(await self.text(), **kwargs)

    def buffered(self) -> bytes | None:
        """The whole body if it is already in memory (None for a streamed body)."""
        body = self._body
        if isinstance(body, AsyncIterator):
            return None
        return body.encode() if isinstance(body, str) else body or b""

    def stream(self) -> AsyncIterator[bytes]:
        """The body chunk by chunk, without buffering a streamed body."""
        if self.body_used:
            raise OSError("Body already used")
        self.body_used = True
        body = self._body
        if body is None or isinstance(body, str | bytes):
            return _once(body.encode() if isinstance(body, str) else body or b"")
        return body


class Request(_Body):
    def __init__(
        self,
        input: Request | str,
        *,
        method: HTTPMethod | str | None = None,
        headers: HeadersInit = None,
        body: Body = None,
        redirect: str = "follow",
    ) -> None:
        if isinstance(input, Request):
            self.url = input.url
            self._method = str(method or input._method).upper()
            self.headers = Headers.of(headers if headers is not None else input.headers.items())
            self._body = body if body is not None else input._body
            self.redirect = redirect
        else:
            self.url = input
            self._method = str(method or "GET").upper()
            self.headers = Headers.of(headers)
            self._body = body
            self.redirect = redirect
        if self._body is not None and self._method in ("GET", "HEAD"):
            raise TypeError("Request with a GET or HEAD method cannot have a body.")

    @property
    def method(self) -> HTTPMethod:
        return HTTPMethod[self._method]

    def clone(self) -> Request:
        if self.body_used:
            raise OSError("Body already used")
        assert not isinstance(self._body, AsyncIterator), "streamed requests cannot be cloned"
        return Request(self)

    def __repr__(self) -> str:
        return f"Request(method={self._method!r}, url={self.url!r})"


class JsResponse:
    """A JS `Response` as the runtime hands it to Python before the SDK wraps it: what the
    SDK's `asgi.fetch` answers. No Python conveniences: `Response(raw)` makes one of it, as
    `workers.Response(js_response)` does on Cloudflare."""

    def __init__(self, response: Response) -> None:
        self._response = response
        self.status = response.status
        self.statusText = response.status_text
        self.headers = response.headers
        self.webSocket = jsnull if response.web_socket is None else response.web_socket

    @property
    def body(self) -> Any:
        return jsnull if self._response._body is None else self._response._body


class Response(_Body):
    def __init__(
        self,
        body: Body | JsResponse = None,
        status: HTTPStatus | int | None = None,
        status_text: str = "",
        headers: HeadersInit = None,
        web_socket: Any = None,
    ) -> None:
        if isinstance(body, JsResponse):
            if status is not None or status_text or headers is not None:
                raise ValueError(
                    "Expected no options when constructing Response from a js.Response"
                )
            raw = body._response
            body, status, status_text = raw._body, raw.status, raw.status_text
            headers, web_socket = raw.headers, raw.web_socket
        status = int(status or 200)
        if status == 101:
            if web_socket is None:
                raise RangeError(
                    "Responses may only be constructed with status codes in "
                    "the range 200 to 599, inclusive."
                )
        elif not 200 <= status <= 599:
            raise RangeError(
                "Responses may only be constructed with status codes in the "
                "range 200 to 599, inclusive."
            )
        if status in NULL_BODY_STATUSES and body not in (None, b"", ""):
            raise TypeError("Response with null body status cannot have body")
        if not isinstance(body, str | bytes | AsyncIterator | None):
            raise TypeError(f"Unsupported type in Response: {type(body).__name__}")
        self._body = body
        self.status = status
        self.status_text = status_text or _reason(status)
        self.headers = Headers.of(headers)
        self.web_socket = web_socket
        if isinstance(body, str) and "content-type" not in self.headers:
            self.headers["content-type"] = "text/plain;charset=UTF-8"

    @property
    def ok(self) -> bool:
        return 200 <= self.status <= 299

    @property
    def js_object(self) -> JsResponse:
        """The JS Response underneath, as the SDK's `Response.js_object` gives it."""
        return JsResponse(self)

    @staticmethod
    def from_json(
        data: Any,
        status: HTTPStatus | int = HTTPStatus.OK,
        status_text: str = "",
        headers: HeadersInit = None,
    ) -> Response:
        response = Response(json.dumps(data), status, status_text, headers)
        if headers is None or "content-type" not in Headers.of(headers):
            response.headers.replace_header("content-type", "application/json")
        return response

    @staticmethod
    def redirect(url: str, status: HTTPStatus | int = HTTPStatus.FOUND) -> Response:
        if int(status) not in (301, 302, 303, 307, 308):
            raise RangeError(f"Invalid status code {int(status)}")
        return Response(None, status, headers={"location": url})

    def __repr__(self) -> str:
        return f"Response(status={self.status})"


class RangeError(ValueError):
    """JavaScript's RangeError, as workerd raises it for an impossible status."""


async def fetch(resource: Request | str, **init: Any) -> Response:
    """Outbound `fetch`, following the SDK: `fetch(url, method=, headers=, body=)`."""
    request = Request(resource, **init) if init or isinstance(resource, str) else resource
    if request.headers.get("upgrade", "").lower() == "websocket":
        return await _connect_websocket(request)
    session = upstream.session()
    async with session.request(
        request._method,
        request.url,
        headers=list(request.headers.items()),
        data=await request.bytes() if request._body is not None else None,
        allow_redirects=request.redirect == "follow",
        ssl=verification_for(request.url),
    ) as reply:
        content = await reply.read()
        # aiohttp has already decoded the body, so its encoding and length no longer hold.
        headers = [(k, v) for k, v in reply.headers.items() if k.lower() not in DECODED_HEADERS]
    status = reply.status
    return Response(
        None if status in NULL_BODY_STATUSES else content, status, reply.reason or "", headers
    )


async def _connect_websocket(request: Request) -> Response:
    """101 with our end of a pair; a refused handshake gets the upstream's status, as in workerd."""
    try:
        ours = await upstream.connect_websocket(request.url, request.headers.items())
    except upstream.HandshakeRefused as refused:
        return Response(refused.message or None, refused.status or 502)
    return Response(None, 101, web_socket=ours)


async def _once(data: bytes) -> AsyncIterator[bytes]:
    if data:
        yield data


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
