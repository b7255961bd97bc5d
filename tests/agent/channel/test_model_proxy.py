"""The model proxy mounted on the real workspace channel (agent/channel/), in front of the
scripted Anthropic API on loopback.

Two workspaces' channels listen on loopback (their "network" is 127.0.0.1/32 here; the
gateway test runs them on real workspace networks). The scripted model accepts only the
real keys, so every 200 proves the stand-in was replaced."""

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from yarl import URL

from agent.channel import Channels, WorkspaceChannel
from agent.channel.model_proxy import model_proxy, new_model_client
from agent.channel.model_sessions import ModelSessions
from agent.persistence import Store
from tests.fakes.anthropic import ScriptedModel, Turn, text
from tests.support.edge import free_port
from tests.support.wait import wait_for
from wire.callbacks import AgentCredential

REAL_KEY = "sk-ant-api03-" + "r" * 40 + "Real"
OAUTH_TOKEN = "sk-ant-oat01-" + "o" * 40 + "Oaut"
WORKSPACES = ("ws-a", "ws-b")
FIRST_BYTE_TIMEOUT_SECONDS = 10.0
STREAM_END_SECONDS = 10.0


@pytest.fixture
def model() -> Iterator[ScriptedModel]:
    with ScriptedModel(keys={REAL_KEY, OAUTH_TOKEN}) as scripted:
        yield scripted


class Proxy:
    def __init__(
        self, channels: dict[str, WorkspaceChannel], sessions: ModelSessions, store: Store
    ) -> None:
        self.channels, self.sessions, self.store = channels, sessions, store

    def base(self, session_id: str, workspace: str = "ws-a") -> str:
        """What the adapter of a session in `workspace` gets as ANTHROPIC_BASE_URL."""
        return self.channels[workspace].url(f"/model/sessions/{session_id}")


@pytest.fixture
async def proxy(tmp_path: Path, model: ScriptedModel) -> AsyncIterator[Proxy]:
    sessions, store = ModelSessions(), Store(tmp_path / "agent.sqlite3")
    async with new_model_client() as client:
        channels = Channels({"/model": model_proxy(sessions, store, client, model.url)})
        opened = {
            workspace: await channels.open(workspace, host="127.0.0.1", subnet="127.0.0.1/32")
            for workspace in WORKSPACES
        }
        try:
            yield Proxy(opened, sessions, store)
        finally:
            await channels.shutdown()
            store.close()


def credential(secret: str = REAL_KEY, base_url: str | None = None) -> AgentCredential:
    kind = "oauth_token" if secret.startswith("sk-ant-oat") else "api_key"
    return AgentCredential(kind=kind, secret=secret, base_url=base_url)


def adapter(proxy: Proxy, workspace: str = "ws-a") -> aiohttp.ClientSession:
    """As Claude Code calls the API: the stand-in (the channel token) as its key, its
    version and a beta."""
    return aiohttp.ClientSession(
        headers={
            "x-api-key": proxy.channels[workspace].token,
            "anthropic-version": "2023-06-01",
            "anthropic-beta": "claude-code-20250219,interleaved-thinking-2025-05-14",
        }
    )


def messages_body(stream: bool) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "stream": stream,
        "messages": [{"role": "user", "content": "hello"}],
        "tools": [{"name": "Read", "input_schema": {"type": "object"}}],
    }


def sse_usage(raw: str) -> dict[str, int]:
    """The usage the adapter itself read off the stream: input from message_start, the
    last output count from message_delta."""
    events = [json.loads(line[5:]) for line in raw.splitlines() if line.startswith("data:")]
    start = next(e for e in events if e["type"] == "message_start")["message"]["usage"]
    delta = [e for e in events if e["type"] == "message_delta"][-1]["usage"]
    return {"input_tokens": start["input_tokens"], "output_tokens": delta["output_tokens"]}


async def test_a_streamed_turn_goes_through_with_the_real_key_and_its_usage_is_kept(
    proxy: Proxy, model: ScriptedModel
) -> None:
    proxy.sessions.add("as-1", "ws-a", credential())
    model.script(Turn([text("Hello from the model.")]))
    async with adapter(proxy) as http:
        url = proxy.base("as-1") + "/v1/messages?beta=true"
        async with http.post(url, json=messages_body(stream=True)) as answer:
            assert answer.status == 200
            assert answer.headers["Content-Type"] == "text/event-stream"
            raw = await answer.text()
    assert "Hello from the model." in "".join(
        json.loads(line[5:])["delta"].get("text", "")
        for line in raw.splitlines()
        if line.startswith("data:") and '"content_block_delta"' in line
    )
    assert raw.rstrip().endswith('data: {"type": "message_stop"}')
    # The real key reached the model; the stand-in did not; the query string came along.
    assert model.seen_keys == [REAL_KEY]
    sent = model.seen_headers[-1]
    assert proxy.channels["ws-a"].token not in json.dumps(sent)
    assert sent["anthropic-beta"] == "claude-code-20250219,interleaved-thinking-2025-05-14"
    assert (model.requests[-1]["path"], model.requests[-1]["query"]) == (
        "/v1/messages",
        "beta=true",
    )
    usage = proxy.store.model_usage("as-1")
    assert usage == {
        "requests": 1,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        **sse_usage(raw),
    }
    assert usage["input_tokens"] > 0 and usage["output_tokens"] > 1


async def test_whole_json_answers_add_up_and_other_calls_are_not_counted(
    proxy: Proxy, model: ScriptedModel
) -> None:
    proxy.sessions.add("as-2", "ws-a", credential())
    model.script(Turn([text("one")]), Turn([text("two, a little longer")]))
    totals = {"input_tokens": 0, "output_tokens": 0}
    async with adapter(proxy) as http:
        for _ in range(2):
            async with http.post(
                proxy.base("as-2") + "/v1/messages", json=messages_body(stream=False)
            ) as answer:
                assert answer.status == 200
                usage = (await answer.json())["usage"]
            for name in totals:
                totals[name] += usage[name]
        counted = proxy.base("as-2") + "/v1/messages/count_tokens"
        async with http.post(counted, json=messages_body(stream=False)) as answer:
            assert answer.status == 200 and (await answer.json())["input_tokens"] > 0
        async with http.get(proxy.base("as-2") + "/v1/models") as answer:
            assert answer.status == 200
            assert (await answer.json())["data"][0]["type"] == "model"
    stored = proxy.store.model_usage("as-2")
    assert stored is not None
    assert (stored["requests"], stored["input_tokens"], stored["output_tokens"]) == (
        2,
        totals["input_tokens"],
        totals["output_tokens"],
    )
    assert model.seen_keys == [REAL_KEY] * 4


async def test_an_oauth_token_goes_as_a_bearer_with_the_oauth_beta_added(
    proxy: Proxy, model: ScriptedModel
) -> None:
    proxy.sessions.add("as-3", "ws-a", credential(OAUTH_TOKEN))
    async with adapter(proxy) as http, http.get(proxy.base("as-3") + "/v1/models") as answer:
        assert answer.status == 200
    assert model.seen_keys == [OAUTH_TOKEN]
    sent = model.seen_headers[-1]
    assert sent["authorization"] == f"Bearer {OAUTH_TOKEN}" and "x-api-key" not in sent
    assert sent["anthropic-beta"].split(",") == [
        "claude-code-20250219",
        "interleaved-thinking-2025-05-14",
        "oauth-2025-04-20",
    ]


async def test_the_first_chunk_arrives_while_the_model_is_still_writing(
    proxy: Proxy, model: ScriptedModel
) -> None:
    proxy.sessions.add("as-4", "ws-a", credential())
    # The scripted model stops after its first text delta and keeps the stream open: an
    # adapter sees that delta only if the proxy forwards chunks as they come.
    model.script(Turn([text("the first words ... and then nothing")], stall=True))
    async with adapter(proxy) as http:
        url = proxy.base("as-4") + "/v1/messages"
        async with http.post(url, json=messages_body(stream=True)) as answer:
            seen = b""
            while b"text_delta" not in seen:
                chunk = await asyncio.wait_for(answer.content.readany(), FIRST_BYTE_TIMEOUT_SECONDS)
                assert chunk, "the stream ended before the first delta"
                seen += chunk
            assert model.streams_open == 1  # still writing: nothing waited for the end
    assert b"the first words" in seen
    # The adapter hung up (a cancelled turn): the proxy hangs up on the model too.
    await asyncio.to_thread(
        wait_for, lambda: model.streams_open == 0, "the model's stream to end", STREAM_END_SECONDS
    )


async def test_the_upstream_s_errors_come_back_as_they_are(
    proxy: Proxy, model: ScriptedModel
) -> None:
    refused = "sk-ant-api03-" + "x" * 40 + "Gone"  # e.g. a key revoked since it was saved
    proxy.sessions.add("as-5", "ws-a", credential(refused))
    async with adapter(proxy) as http:
        url = proxy.base("as-5") + "/v1/messages"
        async with http.post(url, json=messages_body(stream=True)) as answer:
            assert answer.status == 401
            assert answer.headers["Content-Type"].startswith("application/json")
            body = await answer.json()
    assert body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }
    assert proxy.store.model_usage("as-5") is None


async def test_an_upstream_that_is_down_is_a_502_that_says_what_to_do(proxy: Proxy) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    proxy.sessions.add("as-6", "ws-a", credential(base_url=closed))
    async with adapter(proxy) as http:
        url = proxy.base("as-6") + "/v1/messages"
        async with http.post(url, json=messages_body(stream=True)) as answer:
            assert answer.status == 502
            error = (await answer.json())["error"]
    assert error["type"] == "model_upstream_unreachable"
    assert closed in error["message"] and "Settings → Agent" in error["message"]


async def test_another_workspace_s_session_and_an_ended_one_are_unknown(
    proxy: Proxy, model: ScriptedModel
) -> None:
    proxy.sessions.add("as-7", "ws-a", credential())
    proxy.sessions.add("as-8", "ws-b", credential())
    async with adapter(proxy, "ws-b") as http:  # on B's channel with B's token: A's session
        async with http.get(proxy.base("as-7", "ws-b") + "/v1/models") as answer:
            assert answer.status == 404
            assert (await answer.json())["error"]["type"] == "model_session_unknown"
        async with http.get(proxy.base("as-7", "ws-a") + "/v1/models") as answer:
            assert answer.status == 401  # B's token on A's channel
        async with http.get(proxy.base("as-8", "ws-b") + "/v1/models") as answer:
            assert answer.status == 200
    proxy.sessions.remove_workspace("ws-a")  # the workspace is deleted
    async with adapter(proxy) as http, http.get(proxy.base("as-7") + "/v1/models") as answer:
        assert answer.status == 404
    assert model.seen_keys == [REAL_KEY]  # only B's own call reached the model


async def test_bad_paths_and_hop_by_hop_headers(proxy: Proxy, model: ScriptedModel) -> None:
    proxy.sessions.add("as-9", "ws-a", credential())
    async with adapter(proxy) as http:
        for tail in ("v1/../../admin", "v1//models", "v1/./models", "v1/%2e%2e/x"):
            url = URL(f"{proxy.base('as-9')}/{tail}", encoded=True)
            async with http.get(url) as answer:
                assert answer.status == 400, tail
                assert (await answer.json())["error"]["type"] == "bad_model_path"
        assert model.seen_keys == []
        headers = {"Connection": "keep-alive, X-Hop", "X-Hop": "1", "Keep-Alive": "timeout=5"}
        async with http.get(proxy.base("as-9") + "/v1/models", headers=headers) as answer:
            assert answer.status == 200
    sent = model.seen_headers[-1]
    assert "x-hop" not in sent and "keep-alive" not in sent
    assert sent["accept-encoding"] == "identity"
