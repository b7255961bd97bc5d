"""What only the KV twin has: its file. What KV itself does is asserted by the conformance
suite (tests/twin/conformance/kv.py), on both runtimes."""

from pathlib import Path

from twin.clock import ManualClock
from twin.kv import KVNamespace


async def test_data_and_expiry_survive_reopening(
    kv: KVNamespace, kv_path: Path, clock: ManualClock
) -> None:
    await kv.put("kept", "v", metadata={"m": 1})
    await kv.put("expiring", "v", expirationTtl=60)
    kv.close()
    reopened = KVNamespace(kv_path, clock)
    try:
        assert await reopened.getWithMetadata("kept") == {
            "value": "v",
            "metadata": {"m": 1},
            "cacheStatus": None,
        }
        assert await reopened.get("expiring") == "v"
        clock.advance(60)
        assert await reopened.get("expiring") is None
    finally:
        reopened.close()
