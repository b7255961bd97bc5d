"""What only the R2 twin has: its Python types, its clock and its file. What R2 itself does
is asserted by the conformance suite (tests/twin/conformance/r2.py), on both runtimes."""

from datetime import datetime
from pathlib import Path

from tests.twin.conformance.r2 import HTTP_METADATA
from twin.clock import ManualClock
from twin.r2 import R2Bucket, R2Object, R2ObjectBody


async def test_objects_are_typed_and_uploaded_on_the_clock(bucket: R2Bucket) -> None:
    obj = await bucket.put("k", "hello")
    assert isinstance(obj, R2Object)
    # The clock's 1_700_000_000 s, as a naive UTC datetime like the SDK's Date conversion.
    assert obj.uploaded == datetime(2023, 11, 14, 22, 13, 20)
    assert isinstance(await bucket.get("k"), R2ObjectBody)
    assert type(await bucket.head("k")) is R2Object


async def test_objects_survive_reopening(
    bucket: R2Bucket, r2_path: Path, clock: ManualClock
) -> None:
    put = await bucket.put("k", b"\x01\x02", httpMetadata=HTTP_METADATA)
    bucket.close()
    reopened = R2Bucket(r2_path, clock)
    try:
        body = await reopened.get("k")
        assert await body.arrayBuffer() == b"\x01\x02"
        assert body.httpMetadata == HTTP_METADATA
        assert (body.version, body.etag, body.uploaded) == (put.version, put.etag, put.uploaded)
    finally:
        reopened.close()
