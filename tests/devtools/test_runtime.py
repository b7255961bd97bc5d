"""The local edge as a runtime: every binding survives a restart, alarms fire after one,
hibernating WebSockets, outbound fetch (HTTP and WebSocket), waitUntil and cron."""

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.support.edge import ROOT, Edge, running_edge

PROBE = ROOT / "tests" / "fixtures" / "probe_worker" / "wrangler.toml"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / ".sam"


@pytest.fixture
def probe(data_dir: Path) -> Iterator[Edge]:
    with running_edge(data_dir, PROBE) as edge:
        yield edge


def poll(check, seconds: float = 15.0):
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_every_binding_survives_a_restart_and_an_alarm_fires_after_it(data_dir: Path) -> None:
    with running_edge(data_dir, PROBE) as edge, edge.client() as client:
        assert client.put("/d1/greeting", content="hello d1").status_code == 200
        assert client.put("/kv/colour", content="teal").status_code == 200
        assert client.put("/r2/report.txt", content=b"bytes in r2").status_code == 200
        assert (
            client.put("/do/alpha/kv/config", json={"depth": [1, 2, {"x": None}]}).status_code
            == 200
        )
        assert client.post("/do/alpha/sql", content="first line").status_code == 200
        assert client.post("/do/alpha/sql", content="second line").status_code == 200
        # Due in 1.5 s: the edge is stopped long before that.
        assert client.post("/do/alpha/alarm", params={"delay_ms": 1500}).status_code == 200
        assert client.get("/do/alpha/alarm").json() == {"kv": None, "storage": None}

    restarted_at = time.time()
    with running_edge(data_dir, PROBE) as edge, edge.client() as client:
        assert client.get("/d1/greeting").text == "hello d1"
        assert client.get("/kv/colour").json() == {"value": "teal", "metadata": {"by": "probe"}}
        assert client.get("/r2/report.txt").json() == {
            "text": "bytes in r2",
            "custom": {"kind": "probe"},
            "type": "text/plain",
        }
        assert client.get("/do/alpha/kv/config").json() == {"depth": [1, 2, {"x": None}]}
        assert client.get("/do/alpha/sql").json() == ["first line", "second line"]
        assert client.get("/do/beta/sql").json() == []
        fired = poll(lambda: client.get("/do/alpha/alarm").json()["kv"])
        assert fired == "fired"
        assert client.get("/do/alpha/alarm").json()["storage"] >= restarted_at


def test_hibernating_websocket_keeps_state_across_connections(probe: Edge) -> None:
    async def talk() -> list[str]:
        url = f"http://127.0.0.1:{probe.port}/do/lobby/ws"
        headers = {"host": probe.host("api")}
        replies = []
        async with aiohttp.ClientSession() as session:
            for visit in range(2):
                async with session.ws_connect(url, headers=headers) as ws:
                    await ws.send_str(f"hello{visit}")
                    replies.append((await ws.receive(timeout=5)).data)
                    await ws.send_str("again")
                    replies.append((await ws.receive(timeout=5)).data)
        return replies

    assert asyncio.run(talk()) == [
        "hello0 #1 visitor=1",
        "again #2 visitor=1",
        "hello1 #3 visitor=2",
        "again #4 visitor=2",
    ]


def test_outbound_fetch_reaches_http_and_websocket_upstreams(probe: Edge) -> None:
    async def scenario() -> tuple[str, list[str], int]:
        async def hello(request: web.Request) -> web.Response:
            return web.Response(text=f"upstream saw {request.method} {request.path}")

        async def echo(request: web.Request) -> web.WebSocketResponse:
            ws = web.WebSocketResponse()
            await ws.prepare(request)
            async for message in ws:
                if message.data == "bye":
                    await ws.close(code=4001, message=b"upstream says bye")
                    break
                await ws.send_str("echo:" + message.data)
            return ws

        app = web.Application()
        app.add_routes([web.get("/hello", hello), web.get("/echo", echo)])
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            edge = f"http://127.0.0.1:{probe.port}/outbound"
            headers = {"host": probe.host("api")}
            async with aiohttp.ClientSession() as session:
                async with session.get(
                    edge, params={"url": f"http://127.0.0.1:{port}/hello"}, headers=headers
                ) as reply:
                    text = await reply.text()
                async with session.ws_connect(
                    edge + f"?url=http://127.0.0.1:{port}/echo", headers=headers
                ) as ws:
                    echoes = []
                    for word in ("one", "two"):
                        await ws.send_str(word)
                        echoes.append((await ws.receive(timeout=5)).data)
                    await ws.send_str("bye")
                    await ws.receive(timeout=5)
                    code = ws.close_code
        finally:
            await runner.cleanup()
        return text, echoes, code

    text, echoes, code = asyncio.run(scenario())
    assert text == "upstream saw GET /hello"
    assert echoes == ["echo:one", "echo:two"]
    assert code == 4001


def test_wait_until_work_finishes_after_the_response(probe: Edge) -> None:
    with probe.client() as client:
        assert client.get("/later/job").status_code == 202
        assert poll(lambda: client.get("/kv/job").json()["value"]) == "done"


def test_scheduled_hook_runs_the_cron_handler(probe: Edge) -> None:
    with probe.client() as client:
        assert client.get("/kv/cron:last").json()["value"] is None
        assert client.get("/__scheduled", params={"cron": "*/5 * * * *"}).status_code == 200
        assert client.get("/kv/cron:last").json()["value"] == "*/5 * * * *"
        bad = client.get("/__scheduled", params={"cron": "every tuesday"})
        assert bad.status_code == 400
        assert "not a valid cron expression" in bad.text
