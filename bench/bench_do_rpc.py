"""Latency of a Durable Object RPC round trip on the local twin: stub -> method -> return.

Run: .venv/bin/python bench/bench_do_rpc.py  (target: p50 <= 100 µs; prints, never fails)
The baseline is the same method awaited directly on an instance (no stub, no copying),
measured in the same run.
"""

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
TARGET_P50_MICROSECONDS = 100.0
PAYLOAD = {"projectId": "p-123", "message": "hello", "attempt": 3, "tags": ["a", "b", "c"]}


class Echo(DurableObject):
    def ping(self) -> None:
        return None

    async def echo(self, value: Any) -> Any:
        return value


async def measure(call: Any, *args: Any) -> list[float]:
    for _ in range(WARMUP_ROUNDS):
        await call(*args)
    samples = []
    for _ in range(ROUNDS):
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
    with tempfile.TemporaryDirectory() as directory:
        root = Path(directory)
        alarms = AlarmScheduler(root, SystemClock())
        namespace = DurableObjectNamespace(Echo, root / "Echo", lambda: None, alarms)
        stub = namespace.getByName("bench")
        print(f"Durable Object RPC round trip, {ROUNDS} calls each")
        instance = Echo(None, None)

        async def ping_directly() -> None:
            return instance.ping()

        report("ping() -> None", await measure(stub.ping), await measure(ping_directly))
        report(
            "echo(dict of 4 fields)",
            await measure(stub.echo, PAYLOAD),
            await measure(instance.echo, PAYLOAD),
        )
        namespace.close()
        await alarms.stop()


if __name__ == "__main__":
    asyncio.run(main())
