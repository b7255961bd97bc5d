"""The platform seam: the one module that knows which runtime it is on.

On Cloudflare the real `workers` SDK and `js` module are importable; everywhere else the
CPython twin in `twin` provides the same names with the same behaviour. Worker and
Durable Object code imports from here and never asks "am I local?".

`subtle` is WebCrypto's `crypto.subtle` with Python values on both sides (bytes for
buffers, dicts for algorithms and JWKs): `js.crypto.subtle` on Cloudflare, the twin's
stand-in on `cryptography` elsewhere. A rejected operation raises `WebCryptoError`, whose
`name` is WebCrypto's (`OperationError` for a ciphertext that does not authenticate).
"""

from types import SimpleNamespace
from typing import Any

try:
    import js  # type: ignore[import-not-found]  # only exists inside workerd
except ImportError:
    from twin import asgi as runtime_asgi
    from twin.entrypoints import DurableObject, WorkerEntrypoint
    from twin.http import Request, Response, fetch
    from twin.js import jsnull
    from twin.webcrypto import DOMException as WebCryptoError
    from twin.webcrypto import subtle
    from twin.websockets import WebSocketPair

    def with_headers(response: Response, headers: dict[str, str]) -> Response:
        """`response` with `headers` set (replacing any of the same name)."""
        for name, value in headers.items():
            del response.headers[name]
            response.headers[name] = value
        return response

    def _js_array(values: list[Any]) -> list[Any]:
        return values

else:  # pragma: no cover - exercised only on Cloudflare and in tests/pyodide (real Pyodide)
    from js import WebSocketPair  # type: ignore[import-not-found]
    from pyodide.ffi import JsException as WebCryptoError  # type: ignore[import-not-found]
    from pyodide.ffi import jsnull, to_js  # type: ignore[import-not-found]
    from workers import DurableObject, Request, Response, WorkerEntrypoint, fetch
    from workers import asgi as runtime_asgi

    def with_headers(response: Response, headers: dict[str, str]) -> Response:
        """`response` with `headers` set (replacing any of the same name)."""
        # A fetched or asset Response has immutable headers on Cloudflare: copy it first.
        copy = js.Response.new(response.js_object.body, response.js_object)
        for name, value in headers.items():
            copy.headers.set(name, value)
        return Response(copy)

    def _js_array(values: list[Any]) -> Any:
        return to_js(values)

    def _to_js(value: Any) -> Any:
        """bytes → Uint8Array, dict → a plain JS object (nested too), as WebCrypto takes them."""
        return to_js(value, dict_converter=js.Object.fromEntries)

    class _Subtle:
        """`js.crypto.subtle`, taking and answering the Python values the twin's does."""

        async def generateKey(self, algorithm: dict, extractable: bool, usages: list) -> Any:
            return await js.crypto.subtle.generateKey(
                _to_js(algorithm), extractable, _to_js(usages)
            )

        async def importKey(
            self, format: str, keyData: Any, algorithm: dict, extractable: bool, usages: list
        ) -> Any:
            return await js.crypto.subtle.importKey(
                format, _to_js(keyData), _to_js(algorithm), extractable, _to_js(usages)
            )

        async def exportKey(self, format: str, key: Any) -> bytes | dict:
            exported = await js.crypto.subtle.exportKey(format, key)
            return exported.to_py() if format == "jwk" else exported.to_bytes()

        async def sign(self, algorithm: dict, key: Any, data: bytes) -> bytes:
            signed = await js.crypto.subtle.sign(_to_js(algorithm), key, _to_js(data))
            return signed.to_bytes()

        async def verify(self, algorithm: dict, key: Any, signature: bytes, data: bytes) -> bool:
            return bool(
                await js.crypto.subtle.verify(
                    _to_js(algorithm), key, _to_js(signature), _to_js(data)
                )
            )

        async def encrypt(self, algorithm: dict, key: Any, data: bytes) -> bytes:
            sealed = await js.crypto.subtle.encrypt(_to_js(algorithm), key, _to_js(data))
            return sealed.to_bytes()

        async def decrypt(self, algorithm: dict, key: Any, data: bytes) -> bytes:
            opened = await js.crypto.subtle.decrypt(_to_js(algorithm), key, _to_js(data))
            return opened.to_bytes()

    subtle = _Subtle()


# The runtime's ASGI adapter answers a raw JS Response (the twin's does too, so that a Worker
# that forgets this fails locally as well); the Worker handles the SDK's `Response`
# everywhere, so it is wrapped here, once.
async def _asgi_fetch(app: Any, request: Request, env: Any, ctx: Any) -> Response:
    return Response(await runtime_asgi.fetch(app, request, env, ctx))


async def _asgi_websocket(app: Any, request: Request, env: Any) -> Response:
    return Response(await runtime_asgi.websocket(app, request, env))


asgi = SimpleNamespace(fetch=_asgi_fetch, websocket=_asgi_websocket)


def accept_web_socket(ctx: Any, ws: Any, tags: list[str]) -> None:
    """`ctx.acceptWebSocket(ws, tags)` of a Durable Object: workerd takes the tags as a JS
    array only (a Python list reaches it as a proxy and is refused)."""
    ctx.acceptWebSocket(ws, _js_array(tags))


def response_web_socket(response: Response) -> Any:
    """The WebSocket of a `101 Switching Protocols` response (None otherwise)."""
    socket = response.js_object.webSocket
    # JS null arrives as `jsnull` (undefined as None); `js.null` does not exist.
    return None if socket is None or socket is jsnull else socket


__all__ = [
    "DurableObject",
    "Request",
    "Response",
    "WebCryptoError",
    "WebSocketPair",
    "WorkerEntrypoint",
    "accept_web_socket",
    "asgi",
    "fetch",
    "response_web_socket",
    "subtle",
    "with_headers",
]
