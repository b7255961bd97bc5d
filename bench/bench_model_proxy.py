"""What the model proxy adds to a streamed Messages API answer: time to the first chunk and to
the end of the stream, through a workspace channel and the proxy vs straight to the model.

Run: .venv/bin/python bench/bench_model_proxy.py [--rounds N] [--smoke]
(target: first chunk at most +20 ms at p50, issue 10; prints, never fails on time)
`--smoke`: a few rounds, that it runs (tests/bench/ runs it); its figures mean nothing.

The model is the scripted Anthropic API on loopback (tests/fakes/anthropic.py) in a thread
of its own; the proxy is the real one, mounted on a real channel (agent/channel/) on
loopback, with a session and its key registered as the session manager does it. Both
paths are measured in the same run, alternating, with the same client. Every answer must
be a 200 that ends in message_stop, or the run stops.
"""

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.channel import Channels  # noqa: E402
from agent.channel.model_proxy import model_proxy, new_model_client  # noqa: E402
from agent.channel.model_sessions import ModelSessions  # noqa: E402
from agent.persistence import Store  # noqa: E402
from tests.fakes.anthropic import ScriptedModel  # noqa: E402
from wire.callbacks import AgentCredential  # noqa: E402

DEFAULT_ROUNDS = 300
WARMUP_ROUNDS = 20
SMOKE_ROUNDS = 3
TARGET_FIRST_CHUNK_MS = 20.0
KEY = "sk-ant-api03-bench-" + "k" * 40
BODY = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 1024,
    "stream": True,
    "messages": [{"role": "user", "content": "say something"}],
}


async def one(http: aiohttp.ClientSession, url: str, key: str) -> tuple[float, float]:
    """(first chunk, end of stream) in ms for one streamed answer."""
    started = time.perf_counter()
    first = None
    received = b""
    async with http.post(url, json=BODY, headers={"x-api-key": key}) as answer:
        if answer.status != 200:
            raise SystemExit(f"{url} answered {answer.status}: {await answer.text()}")
        async for chunk in answer.content.iter_any():
            if first is None:
                first = time.perf_counter()
            received += chunk
    ended = time.perf_counter()
    if b"message_stop" not in received or first is None:
        raise SystemExit(f"{url}: the stream did not end with message_stop")
    return (first - started) * 1000, (ended - started) * 1000


def summary(label: str, samples: list[tuple[float, float]]) -> tuple[float, float]:
    firsts = sorted(s[0] for s in samples)
    ends = sorted(s[1] for s in samples)
    p99 = int(len(firsts) * 0.99)
    first_p50, end_p50 = statistics.median(firsts), statistics.median(ends)
    print(
        f"{label:<26} first chunk p50 {first_p50:6.2f} ms  p99 {firsts[p99]:6.2f} ms"
        f"   end p50 {end_p50:6.2f} ms  p99 {ends[p99]:6.2f} ms"
    )
    return first_p50, end_p50


async def main(rounds: int, warmup: int) -> None:
    with tempfile.TemporaryDirectory() as directory, ScriptedModel(keys={KEY}) as model:
        sessions, store = ModelSessions(), Store(Path(directory) / "agent.sqlite3")
        sessions.add("as-bench", "ws-bench", AgentCredential(kind="api_key", secret=KEY))
        async with new_model_client() as upstream, aiohttp.ClientSession() as http:
            channels = Channels({"/model": model_proxy(sessions, store, upstream, model.url)})
            channel = await channels.open("ws-bench", host="127.0.0.1", subnet="127.0.0.1/32")
            proxied = channel.url("/model/sessions/as-bench/v1/messages")
            direct = model.url + "/v1/messages"
            try:
                for _ in range(warmup):
                    await one(http, direct, KEY)
                    await one(http, proxied, channel.token)
                straight, through = [], []
                for _ in range(rounds):
                    straight.append(await one(http, direct, KEY))
                    through.append(await one(http, proxied, channel.token))
            finally:
                await channels.shutdown()
        usage = store.model_usage("as-bench")
        store.close()
    print(f"streamed Messages answers, {rounds} each, alternating (+{warmup} warm-up)")
    first_direct, end_direct = summary("straight to the model", straight)
    first_proxy, end_proxy = summary("channel + model proxy", through)
    added = first_proxy - first_direct
    verdict = "within" if added <= TARGET_FIRST_CHUNK_MS else "OVER"
    print(
        f"added by the proxy: first chunk +{added:.2f} ms ({verdict} the "
        f"+{TARGET_FIRST_CHUNK_MS:.0f} ms target), end of stream +{end_proxy - end_direct:.2f} ms"
    )
    if usage is None or usage["requests"] != rounds + warmup:
        raise SystemExit(f"the proxy counted {usage}, not {rounds + warmup} requests")
    print(f"usage counted: {usage['requests']} requests, {usage['output_tokens']} output tokens")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_ROUNDS} rounds, no figures")
    args = parser.parse_args()
    if args.smoke:
        asyncio.run(main(SMOKE_ROUNDS, SMOKE_ROUNDS))
    else:
        asyncio.run(main(args.rounds, WARMUP_ROUNDS))
