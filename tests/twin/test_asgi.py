"""The `workers.asgi` twin runs a real FastAPI app: buffered, streamed and WebSocket."""

import asyncio

import pytest
from fastapi import FastAPI, WebSocket
from fastapi import Request as FastAPIRequest
from fastapi.responses import StreamingResponse

from twin import asgi
from twin.http import Request, Response
from twin.js import jsnull

app = FastAPI()


@app.post("/echo")
async def echo(payload: dict) -> dict:
    return {"got": payload}


@app.get("/env")
async def env_name(request: FastAPIRequest) -> dict:
    return {"env": request.scope["env"]["NAME"]}


@app.get("/stream")
async def stream() -> StreamingResponse:
    async def chunks():
        for n in range(3):
            yield f"chunk{n};"
            await asyncio.sleep(0)

    return StreamingResponse(chunks(), media_type="text/plain")


@app.websocket("/ws")
async def socket(ws: WebSocket) -> None:
    await ws.accept()
    while True:
        text = await ws.receive_text()
        if text == "quit":
            await ws.close(code=4000, reason="asked to")
            return
        await ws.send_text(text.upper())


async def test_buffered_request_and_response_with_env() -> None:
    request = Request(
        "http://api.localhost/echo",
        method="POST",
        headers={"content-type": "application/json"},
        body=b'{"a": [1, 2]}',
    )
    response = Response(await asgi.fetch(app, request, {"NAME": "x"}))
    assert response.status == 200
    assert await response.json() == {"got": {"a": [1, 2]}}
    got_env = Response(await asgi.fetch(app, Request("http://api.localhost/env"), {"NAME": "x"}))
    assert await got_env.json() == {"env": "x"}


async def test_the_adapter_answers_a_raw_js_response_as_the_sdk_does() -> None:
    # On Cloudflare `workers.asgi.fetch` answers a JS Response: code that treats it as the
    # SDK's Response fails there, so it fails here too.
    raw = await asgi.fetch(app, Request("http://api.localhost/env"), {"NAME": "x"})
    assert not hasattr(raw, "json") and not hasattr(raw, "js_object")
    assert raw.status == 200 and raw.webSocket is jsnull and raw.webSocket is not None
    with pytest.raises(ValueError, match="Expected no options"):
        Response(raw, 201)


async def test_streamed_response_arrives_chunk_by_chunk() -> None:
    response = Response(await asgi.fetch(app, Request("http://api.localhost/stream"), {}))
    assert response.buffered() is None  # streamed, not buffered
    assert [chunk async for chunk in response.stream()] == [b"chunk0;", b"chunk1;", b"chunk2;"]


async def test_websocket_through_a_pair() -> None:
    request = Request("http://api.localhost/ws", headers={"upgrade": "websocket"})
    response = Response(await asgi.websocket(app, request, {}))
    assert response.status == 101
    client = response.js_object.webSocket
    inbox: asyncio.Queue = asyncio.Queue()
    client.addEventListener("message", lambda event: inbox.put_nowait(event.data))
    client.addEventListener("close", lambda event: inbox.put_nowait((event.code, event.reason)))
    client.accept()
    client.send("hello")
    assert await asyncio.wait_for(inbox.get(), 5) == "HELLO"
    client.send("quit")
    assert await asyncio.wait_for(inbox.get(), 5) == (4000, "asked to")
