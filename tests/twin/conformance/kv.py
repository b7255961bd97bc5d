"""KV's documented semantics and limits: each case gets an empty namespace.

Expiry itself needs a clock a case can move (KV's shortest TTL is 60 s), so those cases
are twin-only; what workerd can show at once (the expiration a key lists) runs on both.
"""

from typing import Any

from .checks import Runtime, Suite, raises

suite = Suite("kv")

MAX_KEY_BYTES = 512
MAX_VALUE_BYTES = 25 * 1024 * 1024
NEEDS_A_CLOCK = "waits out a TTL of at least 60 s: miniflare runs on real time"


async def all_names(kv: Any, **options: object) -> list[str]:
    # page["keys"], not page.keys: the SDK's JsDict is a dict, whose methods win.
    return [key.name for key in (await kv.list(**options))["keys"]]


@suite.case()
async def put_and_get_text(kv: Any, rt: Runtime) -> None:
    await kv.put("greeting", "héllo")
    assert await kv.get("greeting") == "héllo"
    assert await kv.get("greeting", "text") == "héllo"
    assert await kv.get("missing") is None


@suite.case()
async def get_json_in_every_calling_style(kv: Any, rt: Runtime) -> None:
    await kv.put("doc", '{"n": [1, 2]}')
    assert await kv.get("doc", "json") == {"n": [1, 2]}
    assert await kv.get("doc", type="json") == {"n": [1, 2]}
    assert await kv.get("doc", {"type": "json"}) == {"n": [1, 2]}
    assert await kv.get("missing", type="json") is None
    # JS objects reach Python as attribute-dicts, nested ones too.
    assert (await kv.get("doc", "json")).n == [1, 2]


@suite.case()
async def bytes_round_trip_as_array_buffer(kv: Any, rt: Runtime) -> None:
    await kv.put("raw", b"\x00\xff\x10")
    raw = await kv.get("raw", type="arrayBuffer")
    # Pyodide hands a JS ArrayBuffer over as a memoryview: bytes(value) for bytes.
    assert isinstance(raw, memoryview)
    assert raw == b"\x00\xff\x10"
    await kv.put("text", "é")
    assert await kv.get("text", type="arrayBuffer") == "é".encode()


@suite.case()
async def numbers_and_booleans_are_stored_as_their_js_string(kv: Any, rt: Runtime) -> None:
    await kv.put("n", 5)
    await kv.put("f", 1.0)
    await kv.put("t", True)
    assert [await kv.get(key) for key in ("n", "f", "t")] == ["5", "1", "true"]


@suite.case()
async def empty_value_is_kept(kv: Any, rt: Runtime) -> None:
    await kv.put("empty", "")
    assert await kv.get("empty") == ""


@suite.case()
async def put_overwrites_and_delete_removes(kv: Any, rt: Runtime) -> None:
    await kv.put("k", "one", metadata={"v": 1})
    await kv.put("k", "two")
    assert await kv.getWithMetadata("k") == {"value": "two", "metadata": None, "cacheStatus": None}
    await kv.delete("k")
    await kv.delete("never-existed")
    assert await kv.get("k") is None


@suite.case()
async def get_with_metadata(kv: Any, rt: Runtime) -> None:
    await kv.put("k", '{"a": 1}', metadata={"owner": "ada", "n": 2})
    found = await kv.getWithMetadata("k", type="json")
    assert found.value == {"a": 1}
    assert found.metadata == {"owner": "ada", "n": 2}
    missing = await kv.getWithMetadata("missing")
    assert missing.value is None
    assert missing.metadata is None


@suite.case()
async def metadata_given_in_an_options_dict(kv: Any, rt: Runtime) -> None:
    await kv.put("k", "v", {"metadata": {"from": "dict"}})
    assert (await kv.getWithMetadata("k")).metadata == {"from": "dict"}


@suite.case()
async def expiration_ttl_lists_the_expiry_time(kv: Any, rt: Runtime) -> None:
    before = int(rt.now())
    await kv.put("token", "secret", expirationTtl=60)
    after = int(rt.now())
    [entry] = (await kv.list(prefix="token"))["keys"]
    assert before + 60 <= entry.expiration <= after + 60
    assert await kv.get("token") == "secret"


@suite.case(twin_only=NEEDS_A_CLOCK)
async def expiration_ttl_expires_on_the_clock(kv: Any, rt: Runtime) -> None:
    assert rt.advance is not None
    await kv.put("token", "secret", expirationTtl=60)
    await kv.put("forever", "stays")
    rt.advance(59)
    assert await kv.get("token") == "secret"
    rt.advance(1)
    assert await kv.get("token") is None
    assert (await kv.getWithMetadata("token")).value is None
    assert await all_names(kv) == ["forever"]


@suite.case()
async def absolute_expiration_lists_as_given(kv: Any, rt: Runtime) -> None:
    at = int(rt.now()) + 120
    await kv.put("k", "v", expiration=at)
    assert (await kv.list())["keys"][0].expiration == at
    assert await kv.get("k") == "v"


@suite.case(twin_only=NEEDS_A_CLOCK)
async def absolute_expiration_expires_on_the_clock(kv: Any, rt: Runtime) -> None:
    assert rt.advance is not None
    await kv.put("k", "v", expiration=int(rt.now()) + 120)
    rt.advance(119)
    assert await kv.get("k") == "v"
    rt.advance(1)
    assert await kv.get("k") is None


@suite.case(
    params={
        "ttl-30": (
            "expirationTtl",
            30,
            "Invalid expiration_ttl of 30. Expiration TTL must be at least 60.",
        ),
        "ttl-0": (
            "expirationTtl",
            0,
            "Invalid expiration_ttl of 0. Please specify integer greater than 0.",
        ),
        "in-59s": (
            "expiration",
            59,
            "Invalid expiration of {at}. Expiration times must be at least 60 seconds in the "
            "future.",
        ),
        "now": (
            "expiration",
            0,
            "Invalid expiration of {at}. Please specify integer greater than the current "
            "number of seconds since the UNIX epoch.",
        ),
    }
)
async def expiration_too_soon_is_rejected(
    kv: Any, rt: Runtime, option: str, seconds: int, message: str
) -> None:
    # An absolute expiration is `seconds` from now; a TTL is `seconds` itself.
    value = int(rt.now()) + seconds if option == "expiration" else seconds
    with raises(rt.error, "KV PUT failed: 400 " + message.format(at=value)):
        await kv.put("k", "v", **{option: value})
    assert await kv.get("k") is None


@suite.case(
    params={
        # workerd refuses these itself, before any request (a JS TypeError).
        "empty": ("", "Key name cannot be empty."),
        "dot": (".", '"." is not allowed as a key name.'),
        "dot-dot": ("..", '".." is not allowed as a key name.'),
        "513-ascii": (
            "k" * 513,
            "KV PUT failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.",
        ),
        "514-utf8": (
            "é" * 257,
            "KV PUT failed: 414 UTF-8 encoded length of 514 exceeds key length limit of 512.",
        ),
    }
)
async def bad_keys_are_rejected(kv: Any, rt: Runtime, key: str, message: str) -> None:
    with raises(rt.error, message):
        await kv.put(key, "v")
    with raises(rt.error, message.replace("PUT", "GET")):
        await kv.get(key)
    with raises(rt.error, message.replace("PUT", "DELETE")):
        await kv.delete(key)


@suite.case()
async def longest_key_is_accepted(kv: Any, rt: Runtime) -> None:
    key = "k" * MAX_KEY_BYTES
    await kv.put(key, "v")
    assert await kv.get(key) == "v"
    with raises(rt.error, match=r"^KV GET failed: 414 "):
        await kv.get(key + "k")


@suite.case()
async def oversize_value_and_metadata_are_rejected(kv: Any, rt: Runtime) -> None:
    with raises(rt.error, "KV PUT failed: 413 Value length of 26214401 exceeds limit of 26214400."):
        await kv.put("big", b"x" * (MAX_VALUE_BYTES + 1))
    with raises(rt.error, "KV PUT failed: 413 Metadata length of 1031 exceeds limit of 1024."):
        await kv.put("meta", "v", metadata={"blob": "x" * 1020})
    assert await all_names(kv) == []


@suite.case()
async def list_pages_through_more_keys_than_the_limit(kv: Any, rt: Runtime) -> None:
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


@suite.case()
async def list_with_an_options_dict(kv: Any, rt: Runtime) -> None:
    for name in ("a1", "a2", "a3", "b1"):
        await kv.put(name, "v")
    page = await kv.list({"prefix": "a", "limit": 2})
    assert [key.name for key in page["keys"]] == ["a1", "a2"]
    rest = await kv.list({"prefix": "a", "cursor": page.cursor})
    assert [key.name for key in rest["keys"]] == ["a3"]
    assert rest.list_complete is True


@suite.case()
async def list_orders_keys_by_utf8_bytes(kv: Any, rt: Runtime) -> None:
    keys = ["z", "B", "a", "é", "😀", "\uff41", "A1", "A"]  # \uff41: fullwidth a
    for key in keys:
        await kv.put(key, "v")
    assert await all_names(kv) == sorted(keys, key=lambda key: key.encode())


@suite.case()
async def list_shows_metadata_and_expiration_only_when_set(kv: Any, rt: Runtime) -> None:
    before = int(rt.now())
    await kv.put("plain", "v")
    await kv.put("rich", "v", metadata={"tag": "x"}, expirationTtl=300)
    after = int(rt.now())
    plain, rich = (await kv.list())["keys"]
    assert plain == {"name": "plain"}
    assert before + 300 <= rich["expiration"] <= after + 300
    assert rich == {"name": "rich", "expiration": rich["expiration"], "metadata": {"tag": "x"}}
    assert rich.metadata.tag == "x"


@suite.case()
async def list_limit_is_at_most_1000(kv: Any, rt: Runtime) -> None:
    # A list is a GET request to KV, and its errors say so.
    with raises(
        rt.error,
        "KV GET failed: 400 Invalid key_count_limit of 1001. "
        "Please specify an integer less than 1000.",
    ):
        await kv.list(limit=1001)
    with raises(
        rt.error,
        "KV GET failed: 414 UTF-8 encoded length of 513 exceeds key length limit of 512.",
    ):
        await kv.list(prefix="k" * 513)


@suite.case(params={"0": (0,), "-1": (-1,)})
async def list_limit_below_1_lists_a_whole_page(kv: Any, rt: Runtime, limit: int) -> None:
    for name in ("a", "b"):
        await kv.put(name, "v")
    page = await kv.list(limit=limit)
    assert [key.name for key in page["keys"]] == ["a", "b"]
    assert page.list_complete is True


@suite.case()
async def list_with_a_cursor_it_never_gave_is_empty(kv: Any, rt: Runtime) -> None:
    await kv.put("a", "v")
    page = await kv.list(cursor="zz")
    assert page["keys"] == []
    assert page.list_complete is True
