"""No credential the edge issued appears in its log: terminal WebSockets carry their token
in the query string (`?token=`), and uvicorn logs a WebSocket's request line as it came."""

import asyncio
import contextlib
from pathlib import Path

import aiohttp

from tests.support.edge import Edge, running_edge, signed_in
from tests.support.edge_tokens import EdgeSigner

WORKSPACE = "wsloggedwork"
NODE = "nodeloggednode"


async def knock_with(edge: Edge, host: str, token: str) -> None:
    """Open a WebSocket with `token` in its query (however the edge answers, it logs the
    request line) and close it."""
    url = f"ws://127.0.0.1:{edge.port}/workspaces/{WORKSPACE}/terminal/ws?token={token}&cols=80"
    async with aiohttp.ClientSession() as session:
        with contextlib.suppress(aiohttp.WSServerHandshakeError):
            socket = await session.ws_connect(url, headers={"Host": edge.host(host)})
            await socket.close()


def issued_tokens(edge: Edge) -> list[str]:
    """A session id, a personal API token and a terminal token, all real."""
    client = signed_in(edge, "logwatcher")
    try:
        session = client.cookies["sam_session"]
        api_token = client.post("/api/tokens", json={"name": "logged"}).json()["token"]
        user_id = client.get("/api/auth/me").json()["id"]
    finally:
        client.close()
    signer = EdgeSigner(edge.data_dir, edge.domain)
    try:
        terminal = asyncio.run(signer.terminal(user_id, NODE, WORKSPACE, session))
    finally:
        signer.close()
    return [session, api_token, terminal]


def test_tokens_in_websocket_queries_never_reach_the_edge_log(tmp_path: Path) -> None:
    with running_edge(tmp_path / ".sam") as edge:
        tokens = issued_tokens(edge)
        for token in tokens:
            for host in (f"ws-{WORKSPACE}", "api", "app"):
                asyncio.run(knock_with(edge, host, token))
        log = edge.log()
    # The lines were written (uvicorn's own), only without their credentials.
    assert "?token=[redacted]" in log
    for token in tokens:
        assert token not in log
