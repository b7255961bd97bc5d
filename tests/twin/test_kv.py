"""KV conformance: Cloudflare's documented KV semantics and limits, on an injected clock."""

from pathlib import Path

import pytest

from twin.clock import ManualClock
from twin.errors import KVError
from twin.kv import MAX_KEY_BYTES, MAX_VALUE_BYTES, KVNamespace


async def all_names(kv: KVNamespace, **options: object) -> list[str]:
    # page["keys"], not page.keys: like the SDK's JsDict, a Record's dict methods win.
    return [key.name for key in (await kv.list(**options))["keys"]]


async def test_put_and_get_text(kv: KVNamespace) -> None:
    await kv.put("greeting", "héllo")
    assert await kv.get("greeting") == "héllo"
    assert await kv.get("greeting", "text") == "héllo"
    assert await kv.get("missing") is None


async def test_get_json_in_every_calling_style(kv: KVNamespace) -> None:
    await kv.put("doc", '{"n": [1, 2]}')
    assert await kv.get("doc", "json") == {"n": [1, 2]}
    assert await kv.get("doc", type="json") == {"n": [1, 2]}
    assert await kv.get("doc", {"type": "json"}) == {"n": [1, 2]}
    assert await kv.get("missing", type="json") is None
    # JS objects reach Python as attribute-dicts, nested ones too.
    assert (await kv.get("doc", "json")).n == [1, 2]


async def test_bytes_round_trip_as_array_buffer(kv: KVNamespace) -> None:
    await kv.put("raw", b"\x00\xff\x10")
    assert await kv.get("raw", type="arrayBuffer") == b"\x00\xff\x10"
    await kv.put("text", "é")
    assert await kv.get("text", type="arrayBuffer") == "é".encode()


async def test_empty_value_is_kept(kv: KVNamespace) -> None:
    await kv.put("empty", "")
    assert await kv.get("empty") == ""


async def test_put_overwrites_and_delete_removes(kv: KVNamespace) -> None:
    await kv.put("k", "one", metadata={"v": 1})
    await kv.put("k", "two")
    assert await kv.getWithMetadata("k") == {"value": "two", "metadata": None, "cacheStatus": None}
    await kv.delete("k")
    await kv.delete("never-existed")
    assert await kv.get("k") is None


async def test_get_with_metadata(kv: KVNamespace) -> None:
    await kv.put("k", '{"a": 1}', metadata={"owner": "ada", "n": 2})
    found = await kv.getWithMetadata("k", type="json")
    assert found.value == {"a": 1}
    assert found.metadata == {"owner": "ada", "n": 2}
    missing = await kv.getWithMetadata("missing")
    assert missing.value is None
    assert missing.metadata is None


async def test_metadata_given_in_an_options_dict(kv: KVNamespace) -> None:
    await kv.put("k", "v", {"metadata": {"from": "dict"}})
    assert (await kv.getWithMetadata("k")).metadata == {"from": "dict"}


async def test_expiration_ttl_expires_on_the_clock(kv: KVNamespace, clock: ManualClock) -> None:
    await kv.put("token", "secret", expirationTtl=60)
    await kv.put("forever", "stays")
    [entry] = (await kv.list(prefix="token"))["keys"]
    assert entry.expiration == int(clock.now()) + 60

    clock.advance(59)
    assert await kv.get("token") == "secret"
    clock.advance(1)
    assert await kv.get("token") is None
    assert (await kv.getWithMetadata("token")).value is None
    assert await all_names(kv) == ["forever"]


async def test_absolute_expiration(kv: KVNamespace, clock: ManualClock) -> None:
    at = int(clock.now()) + 120
    await kv.put("k", "v", expiration=at)
    assert (await kv.list())["keys"][0].expiration == at
    clock.advance(119)
    assert await kv.get("k") == "v"
    clock.advance(1)
    assert await kv.get("k") is None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"expirationTtl": 30},
            "KV PUT failed: 400 Invalid expiration_ttl of 30. Expiration TTL must be at least 60.",
        ),
        (
            {"expirationTtl": 0},
            "KV PUT failed: 400 Invalid expiration_ttl of 0. "
            "Please specify integer greater than 0.",
        ),
        (
            {"expiration": 1_700_000_059},
            "KV PUT failed: 400 Invalid expiration of 1700000059. "
            "Expiration times must be at least 60 seconds in the future.",
        ),
        (
            {"expiration": 1_700_000_000},
            "KV PUT failed: 400 Invalid expiration of 1700000000. Please specify integer "
            "greater than the current number of seconds since the UNIX epoch.",
        ),
    ],
)
async def test_expiration_too_soon_is_rejected(
    kv: KVNamespace, clock: ManualClock, options: dict[str, int], message: str
) -> None:
    assert clock.now() == 1_700_000_000
    with pytest.raises(KVError) as caught:
        await kv.put("k", "v", **options)
    assert str(caught.value) == message
    assert await kv.get("k") is None


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("", "KV PUT failed: 400 Key names must not be empty"),
        (".", 'KV PUT failed: 400 Illegal key name ".". Please use a different name.'),
        ("..", 'KV PUT failed: 400 Illegal key name "..". Please use a different name.'),
        (
            "k" * 513,
            "KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.",
        ),
        (
            "é" * 257,
            "KV PUT failed: 414 UTF-8 encoded length of 514 exceeds key length limit of 512.",
        ),
    ],
)
async def test_bad_keys_are_rejected(kv: KVNamespace, key: str, message: str) -> None:
    with pytest.raises(KVError) as caught:
        await kv.put(key, "v")
    assert str(caught.value) == message


async def test_longest_key_is_accepted(kv: KVNamespace) -> None:
    key = "k" * MAX_KEY_BYTES
    await kv.put(key, "v")
    assert await kv.get(key) == "v"
    with pytest.raises(KVError, match=r"^KV GET failed: 414 "):
        await kv.get(key + "k")


async def test_oversize_value_and_metadata_are_rejected(kv: KVNamespace) -> None:
    with pytest.raises(KVError) as caught:
        await kv.put("big", b"x" * (MAX_VALUE_BYTES + 1))
    assert str(caught.value) == (
        "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400."
    )
    with pytest.raises(KVError) as caught:
        await kv.put("meta", "v", metadata={"blob": "x" * 1020})
    assert str(caught.value) == "KV PUT failed: 413 Metadata length of 1031 exceeds limit of 1024."
    assert await all_names(kv) == []


async def test_list_pages_through_more_keys_than_the_limit(kv: KVNamespace) -> None:
    expected = [f"user:{i:03d}" for i in range(25)]
    for name in reversed(expected):
        await kv.put(name, "v")
    await kv.put("other", "v")

    pages, cursor = [], None
    while True:
        page = await kv.list(prefix="user:", limit=10, cursor=cursor)
        pages.append([key.name for key in page["keys"]])
        if page.list_complete:
            assert "cursor" not in page
            break
        cursor = page.cursor
        assert isinstance(cursor, str) and cursor
    assert [len(names) for names in pages] == [10, 10, 5]
    assert [key for page in pages for key in page] == expected


async def test_list_with_an_options_dict(kv: KVNamespace) -> None:
    for name in ("a1", "a2", "a3", "b1"):
        await kv.put(name, "v")
    page = await kv.list({"prefix": "a", "limit": 2})
    assert [key.name for key in page["keys"]] == ["a1", "a2"]
    rest = await kv.list({"prefix": "a", "cursor": page.cursor})
    assert [key.name for key in rest["keys"]] == ["a3"]
    assert rest.list_complete is True


async def test_list_orders_keys_by_utf8_bytes(kv: KVNamespace) -> None:
    keys = ["z", "B", "a", "é", "😀", "\uff41", "A1", "A"]  # \uff41: fullwidth a
    for key in keys:
        await kv.put(key, "v")
    assert await all_names(kv) == sorted(keys, key=lambda key: key.encode())


async def test_list_shows_metadata_and_expiration_only_when_set(
    kv: KVNamespace, clock: ManualClock
) -> None:
    await kv.put("plain", "v")
    await kv.put("rich", "v", metadata={"tag": "x"}, expirationTtl=300)
    plain, rich = (await kv.list())["keys"]
    assert plain == {"name": "plain"}
    assert rich == {"name": "rich", "expiration": int(clock.now()) + 300, "metadata": {"tag": "x"}}
    assert rich.metadata.tag == "x"


@pytest.mark.parametrize("limit", [0, 1001])
async def test_list_limit_must_be_1_to_1000(kv: KVNamespace, limit: int) -> None:
    with pytest.raises(KVError, match=f"^KV LIST failed: 400 Invalid key_count_limit of {limit}"):
        await kv.list(limit=limit)


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
