"""The twin's outbound fetch and WebSocket connect verify `*.localhost` upstreams over TLS
against exactly the CAs they were given (twin/tls_trust.py), as Cloudflare's proxy verifies
an origin's certificate in "Full (strict)" mode: a certificate from any other CA, for
another name, or with no CA named at all is refused before a byte of the request is sent."""

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from devtools.local_ca import LocalCa
from tests.fakes.loopback import LoopbackServer
from twin import tls_trust, upstream
from twin.http import fetch

NAME = "vm-n1.localhost"


class Upstream(LoopbackServer):
    """An https server for NAME that counts what reaches it."""

    name = "tls-upstream"

    def __init__(self, tls: tuple[Path, Path]) -> None:
        super().__init__(tls)
        self.requests = 0

    def routes(self, app: web.Application) -> None:
        app.router.add_get("/hello", self._hello)
        app.router.add_get("/ws", self._socket)

    async def _hello(self, request: web.Request) -> web.Response:
        self.requests += 1
        return web.json_response({"hello": "world"})

    async def _socket(self, request: web.Request) -> web.WebSocketResponse:
        self.requests += 1
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        await socket.send_str("hi")
        await socket.close(code=1008, message=b"revoked")
        return socket


@pytest.fixture(scope="module")
def ca(tmp_path_factory: pytest.TempPathFactory) -> LocalCa:
    return LocalCa.ensure(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="module")
def server(ca: LocalCa, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstream]:
    files = ca.issue(NAME, tmp_path_factory.mktemp("tls"))
    with Upstream((files.cert, files.key)) as running:
        yield running


@pytest.fixture(autouse=True)
async def fresh_trust() -> AsyncIterator[None]:
    yield
    tls_trust.trust_loopback_cas(())
    await upstream.close()


def url(server: Upstream, path: str, scheme: str = "https") -> str:
    return f"{scheme}://{NAME}:{server.port}{path}"


async def test_the_ca_it_was_given_is_trusted(server: Upstream, ca: LocalCa) -> None:
    tls_trust.trust_loopback_cas([ca.cert_path])
    response = await fetch(url(server, "/hello"))
    assert response.status == 200 and await response.json() == {"hello": "world"}
    answer = await fetch(url(server, "/ws", "wss"), headers={"upgrade": "websocket"})
    assert answer.status == 101 and answer.web_socket is not None


async def test_another_ca_or_none_is_refused_and_nothing_is_sent(
    server: Upstream, tmp_path: Path
) -> None:
    before = server.requests
    other = LocalCa.ensure(tmp_path / "other", name="another CA")
    for trusted in ([other.cert_path], []):
        tls_trust.trust_loopback_cas(trusted)
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await fetch(url(server, "/hello"))
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await upstream.connect_websocket(url(server, "/ws", "wss"), [])
    assert server.requests == before


async def test_the_name_must_be_the_certified_one(server: Upstream, ca: LocalCa) -> None:
    tls_trust.trust_loopback_cas([ca.cert_path])
    with pytest.raises(aiohttp.ClientConnectorCertificateError):
        await fetch(f"https://vm-n2.localhost:{server.port}/hello")


async def test_an_upstream_close_code_comes_through_tls(server: Upstream, ca: LocalCa) -> None:
    """The agent closes a revoked terminal with 1008, and that code is what comes through:
    it is read from the peer's close frame, as aiohttp's own `close_code` turns 1006 when
    its reply meets a TLS transport the agent already shut (seen through the edge in
    tests/worker/edge/test_proxy.py's sign-out test)."""
    tls_trust.trust_loopback_cas([ca.cert_path])
    answer = await fetch(url(server, "/ws", "wss"), headers={"upgrade": "websocket"})
    ours = answer.web_socket
    closed: asyncio.Future[tuple[int, str]] = asyncio.get_running_loop().create_future()
    ours.addEventListener(
        "close", lambda event: closed.done() or closed.set_result((event.code, event.reason))
    )
    ours.accept()
    assert await asyncio.wait_for(closed, 10) == (1008, "revoked")


def test_names_off_this_machine_keep_the_public_roots() -> None:
    tls_trust.trust_loopback_cas([])
    assert tls_trust.verification_for("https://api.github.com/user") is True
    assert tls_trust.verification_for("https://vm-n1.example.com/") is True
    assert tls_trust.verification_for("https://vm-n1.localhost:8443/") is not True
    assert tls_trust.verification_for("https://localhost/") is not True
