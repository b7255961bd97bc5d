"""R2's objects, metadata and listing as R2 documents them: each case gets an empty bucket."""

import hashlib
from datetime import UTC, datetime, timedelta
from typing import Any

from .checks import Runtime, Suite, raises

suite = Suite("r2")

MAX_KEY_BYTES = 1024
HTTP_METADATA = {
    "contentType": "text/plain; charset=utf-8",
    "contentLanguage": "en",
    "contentDisposition": 'attachment; filename="log.txt"',
    "contentEncoding": "identity",
    "cacheControl": "max-age=60",
    "cacheExpiry": datetime(2030, 1, 2, 3, 4, 5),
}


def naive_utc(epoch_seconds: float) -> datetime:
    # How the SDK hands a JS Date to Python: naive, in workerd's zone, which is UTC.
    return datetime.fromtimestamp(epoch_seconds, UTC).replace(tzinfo=None)


async def listed_keys(bucket: Any, **options: object) -> list[str]:
    return [obj.key for obj in (await bucket.list(**options)).objects]


@suite.case()
async def put_returns_the_object(bucket: Any, rt: Runtime) -> None:
    before = naive_utc(rt.now())
    obj = await bucket.put("logs/boot.txt", "hello")
    after = naive_utc(rt.now())
    assert obj.key == "logs/boot.txt"
    assert obj["key"] == "logs/boot.txt"
    assert obj.size == 5
    assert obj.etag == hashlib.md5(b"hello").hexdigest()
    assert obj.httpEtag == f'"{obj.etag}"'
    assert obj.uploaded.tzinfo is None
    # A JS Date has millisecond precision.
    assert before - timedelta(milliseconds=1) <= obj.uploaded <= after
    assert isinstance(obj.version, str) and obj.version
    assert isinstance(obj.storageClass, str)
    assert obj.httpMetadata == {}
    assert obj.customMetadata == {}


@suite.case(twin_only="production R2 says Standard; workerd's local R2 leaves it empty")
async def storage_class_is_standard(bucket: Any, rt: Runtime) -> None:
    assert (await bucket.put("k", "v")).storageClass == "Standard"


@suite.case()
async def each_put_gets_a_new_version(bucket: Any, rt: Runtime) -> None:
    first = await bucket.put("k", "one")
    second = await bucket.put("k", "two")
    assert first.version != second.version
    assert (await bucket.head("k")).version == second.version


@suite.case()
async def get_reads_the_body_once(bucket: Any, rt: Runtime) -> None:
    await bucket.put("doc.json", '{"a": {"b": 1}}')
    body = await bucket.get("doc.json")
    assert body.bodyUsed is False
    assert await body.json() == {"a": {"b": 1}}
    assert body["bodyUsed"] is True
    with raises(rt.error, match=r"^Body has already been used"):
        await body.text()


@suite.case(
    params={
        "text": ("text", "héllo"),
        "arrayBuffer": ("arrayBuffer", "héllo".encode()),
        "bytes": ("bytes", "héllo".encode()),
    }
)
async def body_readers(bucket: Any, rt: Runtime, reader: str, expected: object) -> None:
    await bucket.put("k", "héllo".encode())
    body = await bucket.get("k")
    value = await getattr(body, reader)()
    assert value == expected
    # Pyodide hands a JS ArrayBuffer over as a memoryview: bytes(value) for bytes.
    assert type(value) is (str if reader == "text" else memoryview)


@suite.case()
async def json_body_objects_read_by_attribute(bucket: Any, rt: Runtime) -> None:
    await bucket.put("doc.json", '{"a": {"b": 1}}')
    assert (await (await bucket.get("doc.json")).json()).a.b == 1


@suite.case()
async def missing_objects_are_none(bucket: Any, rt: Runtime) -> None:
    assert await bucket.get("missing") is None
    assert await bucket.head("missing") is None


@suite.case()
async def head_has_metadata_but_no_body(bucket: Any, rt: Runtime) -> None:
    await bucket.put("k", b"\x00\x01", customMetadata={"owner": "ada"})
    head = await bucket.head("k")
    assert head.size == 2
    assert head.customMetadata == {"owner": "ada"}
    assert not hasattr(head, "arrayBuffer")


@suite.case()
async def http_and_custom_metadata_round_trip(bucket: Any, rt: Runtime) -> None:
    put = await bucket.put(
        "k", "v", httpMetadata=HTTP_METADATA, customMetadata={"node": "n-1", "step": "2"}
    )
    head = await bucket.head("k")
    for obj in (put, head):
        assert obj.httpMetadata == HTTP_METADATA
        assert obj.customMetadata == {"node": "n-1", "step": "2"}
        assert obj.customMetadata.node == "n-1"


@suite.case()
async def options_dict_works_like_keywords(bucket: Any, rt: Runtime) -> None:
    await bucket.put("k", "v", {"httpMetadata": {"contentType": "application/json"}})
    assert (await bucket.head("k")).httpMetadata == {"contentType": "application/json"}


@suite.case()
async def custom_metadata_values_are_stored_as_their_js_string(bucket: Any, rt: Runtime) -> None:
    await bucket.put("k", "v", customMetadata={"count": 1, "ok": True, "ratio": 1.5})
    assert (await bucket.head("k")).customMetadata == {"count": "1", "ok": "true", "ratio": "1.5"}


@suite.case()
async def custom_metadata_is_capped_at_2_kib(bucket: Any, rt: Runtime) -> None:
    await bucket.put("fits", "v", customMetadata={"k": "x" * 2047})
    with raises(
        rt.error, "put: Your metadata headers exceed the maximum allowed metadata size. (10012)"
    ):
        await bucket.put("too-big", "v", customMetadata={"k": "x" * 2048})


@suite.case()
async def key_is_capped_at_1024_bytes(bucket: Any, rt: Runtime) -> None:
    await bucket.put("k" * MAX_KEY_BYTES, "v")
    with raises(rt.error, "put: The specified object name is not valid. (10020)"):
        await bucket.put("k" * (MAX_KEY_BYTES + 1), "v")


@suite.case()
async def put_none_stores_an_empty_object(bucket: Any, rt: Runtime) -> None:
    obj = await bucket.put("empty", None)
    assert obj.size == 0
    assert await (await bucket.get("empty")).text() == ""


@suite.case()
async def delete_one_and_many(bucket: Any, rt: Runtime) -> None:
    for key in ("a", "b", "c", "d"):
        await bucket.put(key, key)
    await bucket.delete("a")
    await bucket.delete(["b", "c", "never-existed"])
    assert await listed_keys(bucket) == ["d"]


@suite.case()
async def list_truncates_and_continues_with_the_cursor(bucket: Any, rt: Runtime) -> None:
    expected = [f"art/{i:02d}" for i in range(25)]
    for key in reversed(expected):
        await bucket.put(key, "v")
    await bucket.put("other", "v")

    pages, more = [], {}
    while True:
        page = await bucket.list(prefix="art/", limit=10, **more)
        pages.append([obj.key for obj in page.objects])
        if not page.truncated:
            assert "cursor" not in page
            break
        more = {"cursor": page.cursor}
    assert [len(keys) for keys in pages] == [10, 10, 5]
    assert [key for page in pages for key in page] == expected


@suite.case()
async def list_folds_keys_under_the_delimiter(bucket: Any, rt: Runtime) -> None:
    for key in ("p/a/1", "p/a/2", "p/b/1", "p/root", "p/z/9", "q/x"):
        await bucket.put(key, "v")
    page = await bucket.list(prefix="p/", delimiter="/")
    assert [obj.key for obj in page.objects] == ["p/root"]
    assert page.delimitedPrefixes == ["p/a/", "p/b/", "p/z/"]
    assert page.truncated is False


@suite.case(params={"limit-1": (1,), "limit-2": (2,)})
async def delimited_prefixes_count_towards_the_limit(bucket: Any, rt: Runtime, limit: int) -> None:
    for key in ("a/1", "a/2", "b", "c/1", "c/2", "d"):
        await bucket.put(key, "v")
    seen_objects, seen_prefixes, more = [], [], {}
    for _ in range(10):  # a cursor that repeats a folded prefix would loop forever
        page = await bucket.list(delimiter="/", limit=limit, **more)
        assert len(page.objects) + len(page.delimitedPrefixes) <= limit
        seen_objects += [obj.key for obj in page.objects]
        seen_prefixes += page.delimitedPrefixes
        if not page.truncated:
            break
        more = {"cursor": page.cursor}
    assert seen_objects == ["b", "d"]
    assert seen_prefixes == ["a/", "c/"]


@suite.case()
async def list_includes_metadata_only_when_asked(bucket: Any, rt: Runtime) -> None:
    http = {"contentType": "text/plain"}
    await bucket.put("k", "v", httpMetadata=http, customMetadata={"a": "b"})
    # Listed objects are plain JS objects under the SDK (no dict, no datetime): read their
    # fields by attribute.
    [plain] = (await bucket.list()).objects
    assert getattr(plain.httpMetadata, "contentType", None) is None
    assert getattr(plain.customMetadata, "a", None) is None
    [full] = (await bucket.list(include=["httpMetadata", "customMetadata"])).objects
    assert full.httpMetadata.contentType == "text/plain"
    assert full.customMetadata.a == "b"
    [custom_only] = (await bucket.list(include=["customMetadata"])).objects
    assert getattr(custom_only.httpMetadata, "contentType", None) is None
    assert custom_only.customMetadata.a == "b"
    with raises(rt.error, "Unsupported include value nope"):
        await bucket.list(include=["nope"])


@suite.case()
async def list_start_after(bucket: Any, rt: Runtime) -> None:
    for key in ("a", "b", "c"):
        await bucket.put(key, "v")
    assert await listed_keys(bucket, startAfter="a") == ["b", "c"]


@suite.case(params={"prefix": ("prefix",), "cursor": ("cursor",), "startAfter": ("startAfter",)})
async def list_refuses_none_for_a_string_option(bucket: Any, rt: Runtime, option: str) -> None:
    # None crosses as JS null, which R2's ListOptions refuses: leave the option out instead.
    with raises(
        rt.error,
        f"Incorrect type for the '{option}' field on 'ListOptions': "
        "the provided value is not of type 'string'.",
    ):
        await bucket.list(**{option: None})


@suite.case()
async def list_with_a_cursor_it_never_gave_is_empty(bucket: Any, rt: Runtime) -> None:
    await bucket.put("a", "v")
    page = await bucket.list(cursor="zz")
    assert page.objects == []
    assert page.truncated is False


@suite.case(params={"0": (0,), "1001": (1001,)})
async def list_limit_must_be_1_to_1000(bucket: Any, rt: Runtime, limit: int) -> None:
    with raises(rt.error, "list: MaxKeys params must be positive integer <= 1000. (10022)"):
        await bucket.list(limit=limit)
