"""Structured-clone rules, as `workers-runtime-sdk` applies them to RPC and storage."""

import asyncio
import datetime
import enum
import pickle
from pathlib import Path

import pytest

from twin.records import Record
from twin.values import clone, dumps, loads


class Color(enum.StrEnum):
    RED = "red"


ALLOWED = [
    None,
    True,
    False,
    0,
    -(2**70),
    1.5,
    float("inf"),
    "",
    "héllo ✓",
    b"\x00\xff",
    [],
    {},
    [1, [2, [3]]],
    {"a": {"b": [None, b"x"]}},
]


@pytest.mark.parametrize("value", ALLOWED, ids=repr)
def test_allowed_values_come_back_equal_with_the_same_types(value: object) -> None:
    copy = clone(value)
    assert copy == value
    assert type(copy) is (Record if isinstance(value, dict) else type(value))
    assert loads(dumps(value)) == value


def test_a_clone_shares_no_mutable_part() -> None:
    original = {"list": [1, {"deep": [2]}], "map": {"k": "v"}}
    copy = clone(original)
    copy["list"][1]["deep"].append(3)
    copy["map"]["k"] = "changed"
    assert original == {"list": [1, {"deep": [2]}], "map": {"k": "v"}}


def test_dicts_arrive_as_records_with_attribute_access() -> None:
    copy = clone({"user": {"name": "ada"}})
    assert copy.user.name == "ada"


def test_enum_members_cross_as_their_plain_value() -> None:
    copy = clone({"color": Color.RED})
    assert copy["color"] == "red"
    assert type(copy["color"]) is str


def test_datetimes_become_naive_utc_at_millisecond_precision() -> None:
    naive = datetime.datetime(2024, 5, 1, 12, 30, 15, 123_987)
    assert clone(naive) == datetime.datetime(2024, 5, 1, 12, 30, 15, 123_000)
    aware = datetime.datetime(
        2024, 5, 1, 14, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))
    )
    copy = clone(aware)
    assert copy == datetime.datetime(2024, 5, 1, 12, 30)
    assert copy.tzinfo is None
    assert loads(dumps(aware)) == copy


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ((1, 2), "<class 'tuple'> cannot be sent over RPC."),
        (bytearray(b"x"), "<class 'bytearray'> cannot be sent over RPC."),
        ([1, (2,)], "<class 'tuple'> cannot be sent over RPC."),
        ({"nested": {"t": ()}}, "<class 'tuple'> cannot be sent over RPC."),
    ],
)
def test_tuples_and_bytearrays_are_refused_with_the_sdk_message(
    value: object, message: str
) -> None:
    with pytest.raises(TypeError) as caught:
        clone(value)
    assert str(caught.value) == message


async def test_awaitables_are_refused() -> None:
    future = asyncio.get_running_loop().create_future()
    with pytest.raises(TypeError, match=r"^Awaitable <class '_asyncio.Future'> cannot be sent"):
        clone([future])


@pytest.mark.parametrize("value", [Path("/tmp"), {1, 2}, object(), datetime.date(2024, 1, 1)])
def test_other_objects_are_refused(value: object) -> None:
    with pytest.raises(TypeError, match="does not support serialization"):
        clone(value)


def test_functions_are_refused_locally() -> None:
    with pytest.raises(TypeError, match="cannot be sent over RPC"):
        clone(len)


def test_dict_keys_must_be_strings() -> None:
    with pytest.raises(TypeError, match="keys"):
        clone({1: "one"})


def test_stored_bytes_may_name_no_foreign_class() -> None:
    with pytest.raises(pickle.UnpicklingError, match="foreign class"):
        loads(pickle.dumps(Path("/etc/passwd")))
