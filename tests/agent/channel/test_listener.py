"""The channel's listeners on loopback: who gets through, and what outlives a restart.

Real sockets and a real aiohttp client; a workspace's network is stood in for by a loopback
address and its /32 (tests/agent/sandbox/ does the same through real Docker networks).
"""

import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from agent.channel import WORKSPACE_ID, Channels, WorkspaceChannel

A_HOST, B_HOST = "127.0.0.1", "127.0.0.2"


async def echo_workspace(request: web.Request) -> web.Response:
    return web.json_response({"seen": request[WORKSPACE_ID], "path": request.path})


def service() -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/messages", echo_workspace)
    return app


@pytest.fixture
async def channels(tmp_path: Path) -> AsyncIterator[Channels]:
    opened = Channels({"/model": service()}, tmp_path)
    yield opened
    await opened.shutdown()


async def call(
    channel: WorkspaceChannel,
    path: str = "/whoami",
    *,
    headers: dict[str, str] | None = None,
    source: str = A_HOST,
    method: str = "GET",
) -> tuple[int, dict]:
    connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
    async with (
        aiohttp.ClientSession(connector=connector) as http,
        http.request(method, channel.url(path), headers=headers) as response,
    ):
        return response.status, await response.json()


def bearer(channel: WorkspaceChannel) -> dict[str, str]:
    return {"Authorization": f"Bearer {channel.token}"}


async def test_a_workspace_with_its_token_is_known_by_name(channels: Channels) -> None:
    channel = await channels.open("w-a", host=A_HOST, subnet=f"{A_HOST}/32")
    assert channel.url("/x") == f"http://{A_HOST}:{channel.port}/x"
    assert await call(channel, headers=bearer(channel)) == (200, {"workspace_id": "w-a"})
    # The Anthropic SDK's header works as well, and a mounted service sees the workspace.
    status, body = await call(
        channel, "/model/v1/messages", headers={"x-api-key": channel.token}, method="POST"
    )
    assert (status, body) == (200, {"seen": "w-a", "path": "/model/v1/messages"})
    assert channels.get("w-a") == channel and channels.get("w-b") is None


async def test_no_token_or_a_wrong_one_is_refused(channels: Channels) -> None:
    channel = await channels.open("w-a", host=A_HOST, subnet=f"{A_HOST}/32")
    status, body = await call(channel)
    assert status == 401 and "channel token" in body["message"]
    for headers in (
        {"Authorization": f"Bearer {channel.token}x"},
        {"Authorization": f"Basic {channel.token}"},
        {"x-api-key": channel.token[:-1]},
        {"x-api-key": ""},
    ):
        assert (await call(channel, headers=headers))[0] == 401, headers


async def test_another_workspace_cannot_use_the_channel_or_its_token(channels: Channels) -> None:
    a = await channels.open("w-a", host=A_HOST, subnet=f"{A_HOST}/32")
    b = await channels.open("w-b", host=B_HOST, subnet=f"{B_HOST}/32")
    assert a.token != b.token and len(a.token) >= 32
    # From B's address, A's channel refuses even A's own token.
    status, body = await call(a, headers=bearer(a), source=B_HOST)
    assert status == 403 and "own workspace" in body["message"]
    # From B's address with A's token, B's channel refuses too.
    assert (await call(b, headers=bearer(a), source=B_HOST))[0] == 401
    assert await call(b, headers=bearer(b), source=B_HOST) == (200, {"workspace_id": "w-b"})


async def test_a_closed_channel_is_gone_and_its_token_forgotten(
    channels: Channels, tmp_path: Path
) -> None:
    channel = await channels.open("w-a", host=A_HOST, subnet=f"{A_HOST}/32")
    assert (tmp_path / "channels" / "w-a.json").exists()
    await channels.close("w-a")
    assert channels.get("w-a") is None
    assert not (tmp_path / "channels" / "w-a.json").exists()
    with pytest.raises(aiohttp.ClientConnectionError):
        await call(channel, headers=bearer(channel))
    again = await channels.open("w-a", host=A_HOST, subnet=f"{A_HOST}/32")
    assert again.token != channel.token


async def test_a_restarted_agent_opens_the_same_channel_with_the_token_kept_private(
    tmp_path: Path,
) -> None:
    first = Channels({}, tmp_path)
    channel = await first.open("w-a", host=A_HOST, subnet=f"{A_HOST}/32")
    await first.shutdown()
    stored = tmp_path / "channels" / "w-a.json"
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700
    second = Channels({}, tmp_path)
    try:
        again = await second.open("w-a", host=A_HOST, subnet=f"{A_HOST}/32")
        assert (again.token, again.port) == (channel.token, channel.port)
        assert await call(again, headers=bearer(channel)) == (200, {"workspace_id": "w-a"})
    finally:
        await second.shutdown()


async def test_the_token_never_shows_in_the_channels_repr(channels: Channels) -> None:
    channel = await channels.open("w-a", host=A_HOST, subnet=f"{A_HOST}/32")
    assert channel.token not in repr(channel) and channel.url() in repr(channel)


async def test_a_taken_port_gives_the_reopened_channel_another(tmp_path: Path) -> None:
    first = Channels({}, tmp_path)
    channel = await first.open("w-a", host=A_HOST, subnet=f"{A_HOST}/32")
    await first.shutdown()
    squatter = socket.create_server((A_HOST, channel.port))
    second = Channels({}, tmp_path)
    try:
        again = await second.open("w-a", host=A_HOST, subnet=f"{A_HOST}/32")
        assert again.port != channel.port and again.token == channel.token
        assert await call(again, headers=bearer(again)) == (200, {"workspace_id": "w-a"})
    finally:
        squatter.close()
        await second.shutdown()


async def test_a_request_on_a_connection_of_a_closed_channel_is_refused(
    channels: Channels,
) -> None:
    channel = await channels.open("w-a", host=A_HOST, subnet=f"{A_HOST}/32")
    connector = aiohttp.TCPConnector(local_addr=(A_HOST, 0))  # keeps its connection
    async with aiohttp.ClientSession(connector=connector) as http:
        async with http.get(channel.url("/whoami"), headers=bearer(channel)) as answer:
            assert answer.status == 200
        await channels.close("w-a")
        try:
            async with http.get(channel.url("/whoami"), headers=bearer(channel)) as answer:
                assert answer.status == 404
                assert "closed" in (await answer.json())["message"]
        except aiohttp.ClientConnectionError:
            pass  # or the connection is gone with the listener: refused all the same
