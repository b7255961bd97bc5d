"""Latency of a Durable Object RPC round trip on the local twin: stub -> method -> return.

Run: .venv/bin/python bench/bench_do_rpc.py  (target: p50 <= 100 µs; prints, never fails
on time; fails if a call answers anything but what was sent)
     .venv/bin/python bench/bench_do_rpc.py --smoke   (200 calls: that it runs, no figures)
The baseline is the same method awaited directly on an instance (no stub, no copying),
measured in the same run.
"""

import argparse
import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

from twin.alarms import AlarmScheduler
from twin.clock import SystemClock
from twin.durable_objects import DurableObjectNamespace
from twin.entrypoints import DurableObject

ROUNDS = 20_000
WARMUP_ROUNDS = 1_000
SMOKE_ROUNDS = 200
TARGET_P50_MICROSECONDS = 100.0
PAYLOAD = {"projectId": "p-123", "message": "hello", "attempt": 3, "tags": ["a", "b", "c"]}


class Echo(DurableObject):
    def ping(self) -> None:
        return None

    async def echo(self, value: Any) -> Any:
        return value


class BenchError(RuntimeError):
    """A call that answered something else: the figures would mean nothing."""


async def measure(rounds: int, call: Any, *args: Any) -> list[float]:
    expected = args[0] if args else None
    for _ in range(min(WARMUP_ROUNDS, rounds)):
        answer = await call(*args)
        if answer != expected:
            raise BenchError(f"{call!r}{args} answered {answer!r}, not {expected!r}")
    samples = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        await call(*args)
        samples.append((time.perf_counter_ns() - start) / 1000)
    return sorted(samples)


def report(label: str, samples: list[float], direct: list[float]) -> None:
    p50, p99 = samples[len(samples) // 2], samples[int(len(samples) * 0.99)]
    direct_p50 = direct[len(direct) // 2]
    verdict = "within" if p50 <= TARGET_P50_MICROSECONDS else "OVER"
    print(
        f"{label:<28} p50 {p50:7.1f} µs   p99 {p99:7.1f} µs   direct call p50 {direct_p50:5.2f} µs"
        f"   ({verdict} the {TARGET_P50_MICROSECONDS:.0f} µs p50 target)"
    )


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help=f"{SMOKE_ROUNDS} calls, no figures")
    rounds = SMOKE_ROUNDS if parser.parse_args().smoke else ROUNDS
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        alarms = AlarmScheduler(root, SystemClock())
        namespace = DurableObjectNamespace(Echo, root / "Echo", lambda: None, alarms)
        stub = namespace.getByName("bench")
        print(f"Durable Object RPC round trip, {rounds} calls each")
        instance = Echo(None, None)

        async def ping_directly() -> None:
            return instance.ping()

        report(
            "ping() -> None", await measure(rounds, stub.ping), await measure(rounds, ping_directly)
        )
        report(
            "echo(dict of 4 fields)",
            await measure(rounds, stub.echo, PAYLOAD),
            await measure(rounds, instance.echo, PAYLOAD),
        )
        namespace.close()
        await alarms.stop()


if __name__ == "__main__":
    asyncio.run(main())
