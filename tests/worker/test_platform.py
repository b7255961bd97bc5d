"""The platform seam on the twin, which answers as the SDK does (a raw JS Response from
the ASGI adapter, JS null that is not None), so a seam bug fails here and not only on
Cloudflare."""

from fastapi import FastAPI

from twin.http import Request
from twin.js import jsnull
from twin.websockets import WebSocketPair
from worker.platform import Response, asgi, response_web_socket, with_headers

app = FastAPI()


@app.get("/hello")
async def hello() -> dict[str, str]:
    return {"hello": "world"}


def test_a_response_without_a_socket_has_none_not_js_null() -> None:
    plain = Response("no socket here")
    assert plain.js_object.webSocket is jsnull  # what the runtime hands over
    assert response_web_socket(plain) is None  # what the Worker sees


def test_a_101_hands_its_socket_over() -> None:
    client, _server = WebSocketPair.new().object_values()
    assert response_web_socket(Response(None, 101, web_socket=client)) is client


async def test_the_asgi_adapter_answers_the_sdks_response() -> None:
    response = await asgi.fetch(app, Request("http://api.localhost/hello"), {}, None)
    assert await response.json() == {"hello": "world"}
    stamped = with_headers(response, {"x-request-id": "r1"})
    assert stamped.headers["x-request-id"] == "r1"
