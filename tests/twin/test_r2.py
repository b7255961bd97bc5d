"""R2 conformance: objects, metadata and listing as R2 documents them."""

import hashlib
from datetime import datetime
from pathlib import Path

import pytest

from twin.clock import ManualClock
from twin.errors import R2Error
from twin.r2 import MAX_KEY_BYTES, R2Bucket, R2Object, R2ObjectBody

HTTP_METADATA = {
    "contentType": "text/plain; charset=utf-8",
    "contentLanguage": "en",
    "contentDisposition": 'attachment; filename="log.txt"',
    "contentEncoding": "identity",
    "cacheControl": "max-age=60",
    "cacheExpiry": datetime(2030, 1, 2, 3, 4, 5),
}


async def listed_keys(bucket: R2Bucket, **options: object) -> list[str]:
    return [obj.key for obj in (await bucket.list(**options)).objects]


async def test_put_returns_the_object(bucket: R2Bucket) -> None:
    obj = await bucket.put("logs/boot.txt", "hello")
    assert isinstance(obj, R2Object)
    assert obj.key == "logs/boot.txt"
    assert obj["key"] == "logs/boot.txt"
    assert obj.size == 5
    assert obj.etag == hashlib.md5(b"hello").hexdigest()
    assert obj.httpEtag == f'"{obj.etag}"'
    # The clock's 1_700_000_000 s, as a naive UTC datetime like the SDK's Date conversion.
    assert obj.uploaded == datetime(2023, 11, 14, 22, 13, 20)
    assert obj.uploaded.tzinfo is None
    assert isinstance(obj.version, str) and obj.version
    assert obj.storageClass == "Standard"
    assert obj.httpMetadata == {}
    assert obj.customMetadata == {}


async def test_each_put_gets_a_new_version(bucket: R2Bucket) -> None:
    first = await bucket.put("k", "one")
    second = await bucket.put("k", "two")
    assert first.version != second.version
    assert (await bucket.head("k")).version == second.version


async def test_get_reads_the_body_once(bucket: R2Bucket) -> None:
    await bucket.put("doc.json", '{"a": {"b": 1}}')
    body = await bucket.get("doc.json")
    assert isinstance(body, R2ObjectBody)
    assert body.bodyUsed is False
    assert await body.json() == {"a": {"b": 1}}
    assert body["bodyUsed"] is True
    with pytest.raises(R2Error, match=r"^Body has already been used"):
        await body.text()


@pytest.mark.parametrize(
    ("reader", "expected"),
    [("text", "héllo"), ("arrayBuffer", "héllo".encode()), ("bytes", "héllo".encode())],
)
async def test_body_readers(bucket: R2Bucket, reader: str, expected: object) -> None:
    await bucket.put("k", "héllo".encode())
    body = await bucket.get("k")
    assert await getattr(body, reader)() == expected


async def test_json_body_objects_read_by_attribute(bucket: R2Bucket) -> None:
    await bucket.put("doc.json", '{"a": {"b": 1}}')
    assert (await (await bucket.get("doc.json")).json()).a.b == 1


async def test_missing_objects_are_none(bucket: R2Bucket) -> None:
    assert await bucket.get("missing") is None
    assert await bucket.head("missing") is None


async def test_head_has_metadata_but_no_body(bucket: R2Bucket) -> None:
    await bucket.put("k", b"\x00\x01", customMetadata={"owner": "ada"})
    head = await bucket.head("k")
    assert type(head) is R2Object
    assert head.size == 2
    assert head.customMetadata == {"owner": "ada"}


async def test_http_and_custom_metadata_round_trip(bucket: R2Bucket) -> None:
    put = await bucket.put(
        "k", "v", httpMetadata=HTTP_METADATA, customMetadata={"node": "n-1", "step": "2"}
    )
    head = await bucket.head("k")
    for obj in (put, head):
        assert obj.httpMetadata == HTTP_METADATA
        assert obj.customMetadata == {"node": "n-1", "step": "2"}
        assert obj.customMetadata.node == "n-1"


async def test_options_dict_works_like_keywords(bucket: R2Bucket) -> None:
    await bucket.put("k", "v", {"httpMetadata": {"contentType": "application/json"}})
    assert (await bucket.head("k")).httpMetadata == {"contentType": "application/json"}


async def test_custom_metadata_must_be_strings(bucket: R2Bucket) -> None:
    with pytest.raises(R2Error, match="customMetadata keys and values must be strings"):
        await bucket.put("k", "v", customMetadata={"count": 1})
    assert await bucket.head("k") is None


async def test_custom_metadata_is_capped_at_2_kib(bucket: R2Bucket) -> None:
    await bucket.put("fits", "v", customMetadata={"k": "x" * 2047})
    with pytest.raises(R2Error) as caught:
        await bucket.put("too-big", "v", customMetadata={"k": "x" * 2048})
    assert str(caught.value) == (
        "put: Your metadata headers exceed the maximum allowed metadata size. (10012)"
    )


async def test_key_is_capped_at_1024_bytes(bucket: R2Bucket) -> None:
    await bucket.put("k" * MAX_KEY_BYTES, "v")
    with pytest.raises(R2Error) as caught:
        await bucket.put("k" * (MAX_KEY_BYTES + 1), "v")
    assert str(caught.value) == "put: The specified object name is not valid. (10020)"


async def test_put_none_stores_an_empty_object(bucket: R2Bucket) -> None:
    obj = await bucket.put("empty", None)
    assert obj.size == 0
    assert await (await bucket.get("empty")).text() == ""


async def test_delete_one_and_many(bucket: R2Bucket) -> None:
    for key in ("a", "b", "c", "d"):
        await bucket.put(key, key)
    await bucket.delete("a")
    await bucket.delete(["b", "c", "never-existed"])
    assert await listed_keys(bucket) == ["d"]


async def test_list_truncates_and_continues_with_the_cursor(bucket: R2Bucket) -> None:
    expected = [f"art/{i:02d}" for i in range(25)]
    for key in reversed(expected):
        await bucket.put(key, "v")
    await bucket.put("other", "v")

    pages, cursor = [], None
    while True:
        page = await bucket.list(prefix="art/", limit=10, cursor=cursor)
        pages.append([obj.key for obj in page.objects])
        if not page.truncated:
            assert "cursor" not in page
            break
        cursor = page.cursor
    assert [len(keys) for keys in pages] == [10, 10, 5]
    assert [key for page in pages for key in page] == expected


async def test_list_folds_keys_under_the_delimiter(bucket: R2Bucket) -> None:
    for key in ("p/a/1", "p/a/2", "p/b/1", "p/root", "p/z/9", "q/x"):
        await bucket.put(key, "v")
    page = await bucket.list(prefix="p/", delimiter="/")
    assert [obj.key for obj in page.objects] == ["p/root"]
    assert page.delimitedPrefixes == ["p/a/", "p/b/", "p/z/"]
    assert page.truncated is False


@pytest.mark.parametrize("limit", [1, 2])
async def test_delimited_prefixes_count_towards_the_limit(bucket: R2Bucket, limit: int) -> None:
    for key in ("a/1", "a/2", "b", "c/1", "c/2", "d"):
        await bucket.put(key, "v")
    seen_objects, seen_prefixes, cursor = [], [], None
    for _ in range(10):  # a cursor that repeats a folded prefix would loop forever
        page = await bucket.list(delimiter="/", limit=limit, cursor=cursor)
        assert len(page.objects) + len(page.delimitedPrefixes) <= limit
        seen_objects += [obj.key for obj in page.objects]
        seen_prefixes += page.delimitedPrefixes
        if not page.truncated:
            break
        cursor = page.cursor
    assert seen_objects == ["b", "d"]
    assert seen_prefixes == ["a/", "c/"]


async def test_list_includes_metadata_only_when_asked(bucket: R2Bucket) -> None:
    await bucket.put(
        "k", "v", httpMetadata={"contentType": "text/plain"}, customMetadata={"a": "b"}
    )
    [plain] = (await bucket.list()).objects
    assert plain.httpMetadata == {}
    assert plain.customMetadata == {}
    [full] = (await bucket.list(include=["httpMetadata", "customMetadata"])).objects
    assert full.httpMetadata == {"contentType": "text/plain"}
    assert full.customMetadata == {"a": "b"}
    [custom_only] = (await bucket.list(include=["customMetadata"])).objects
    assert custom_only.httpMetadata == {}
    assert custom_only.customMetadata == {"a": "b"}


async def test_list_start_after(bucket: R2Bucket) -> None:
    for key in ("a", "b", "c"):
        await bucket.put(key, "v")
    assert await listed_keys(bucket, startAfter="a") == ["b", "c"]


@pytest.mark.parametrize("limit", [0, 1001])
async def test_list_limit_must_be_1_to_1000(bucket: R2Bucket, limit: int) -> None:
    with pytest.raises(R2Error) as caught:
        await bucket.list(limit=limit)
    assert str(caught.value) == "list: MaxKeys params must be positive integer <= 1000. (10022)"


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
