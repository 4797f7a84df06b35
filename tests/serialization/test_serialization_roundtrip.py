"""Every serializer round-trips plain data exactly; unsupported objects fail clearly."""

from __future__ import annotations

import enum
import json
import math
import threading
from collections import OrderedDict
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from decimal import Decimal
from fractions import Fraction
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from serialization_helpers import assert_same, plain_data

from fluvial.serialization import SerializationError, dumps_with_fallback, get_serializer

SERIALIZERS = [
    "msgpack",
    "json",
    "cloudpickle",
    "compressed/msgpack",
    "compressed/json",
    "compressed/cloudpickle",
]
DATA_SERIALIZERS = ["msgpack", "json", "compressed/msgpack", "compressed/json"]


def roundtrip(name: str, obj: object) -> object:
    serializer = get_serializer(name)
    data = serializer.dumps(obj)
    assert isinstance(data, bytes)
    return serializer.loads(data)


@pytest.mark.parametrize("name", SERIALIZERS)
@settings(max_examples=120, deadline=None)
@given(obj=plain_data)
def test_roundtrip_is_exact(name: str, obj: object) -> None:
    assert_same(roundtrip(name, obj), obj)


EXACT_CASES = {
    "tuple vs list": ((1, [2, (3,)]), [(1,), []]),
    "set and frozenset": ({1, "a", (2, 3)}, frozenset({b"x", frozenset({1})})),
    "naive datetime": datetime(2024, 2, 29, 23, 59, 59, 999999),
    "utc datetime": datetime(2024, 1, 1, tzinfo=UTC),
    "fixed offset with name": datetime(
        2024, 1, 1, 5, tzinfo=timezone(timedelta(hours=-3, minutes=-30), "NST")
    ),
    "sub-minute offset": datetime(
        1900, 1, 1, tzinfo=timezone(timedelta(seconds=1234, microseconds=5))
    ),
    "zoneinfo fold": datetime(2021, 11, 7, 1, 30, tzinfo=ZoneInfo("America/New_York"), fold=1),
    "time with tz": time(12, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
    "date": date(1, 1, 1),
    "timedelta": timedelta(days=-999999999, microseconds=1),
    "uuid": UUID("12345678-1234-5678-1234-567812345678"),
    "decimals": [
        Decimal("-0.00"),
        Decimal("1E+3"),
        Decimal("NaN"),
        Decimal("-Infinity"),
        Decimal("sNaN"),
    ],
    "big ints": [2**64, -(2**63) - 1, 2**1000, -(2**1000)],
    "floats": [0.1, -0.0, math.inf, -math.inf, 1e308],
    "complex": complex(1.5, -0.0),
    "non-str keys": {
        1: "int",
        (1, "a"): "tuple",
        frozenset({2}): "fs",
        b"k": 1,
        None: 2,
        date(2020, 1, 1): 3,
    },
    "tag-looking dict": {"$type": "tuple", "items": [1]},
    "keys of every kind": {
        datetime(2020, 1, 1, tzinfo=UTC): 1,
        UUID(int=1): 2,
        Decimal("1.10"): 3,
    },
}


@pytest.mark.parametrize("name", SERIALIZERS)
@pytest.mark.parametrize("case", list(EXACT_CASES))
def test_exact_type_preservation(name: str, case: str) -> None:
    obj = EXACT_CASES[case]
    assert_same(roundtrip(name, obj), obj)


def test_utc_decodes_to_the_utc_singleton() -> None:
    for name in DATA_SERIALIZERS:
        value = roundtrip(name, datetime(2024, 1, 1, tzinfo=UTC))
        assert value.tzinfo is UTC


@pytest.mark.parametrize("name", DATA_SERIALIZERS)
def test_bytearray_reads_back_as_bytes(name: str) -> None:
    assert_same(roundtrip(name, bytearray(b"ab")), b"ab")


class Color(enum.IntEnum):
    RED = 1


class Custom:
    def __init__(self, x: int) -> None:
        self.x = x


UNSUPPORTED = [
    (Custom(1), "Custom"),
    ([{"deep": threading.Lock()}], "lock"),
    (OrderedDict(a=1), "OrderedDict"),  # subclasses are not flattened to their base type
    (Color.RED, "Color"),
    (Fraction(1, 3), "Fraction"),
]


@pytest.mark.parametrize("name", ["msgpack", "json", "compressed/msgpack"])
@pytest.mark.parametrize(("obj", "type_name"), UNSUPPORTED)
def test_unsupported_object_raises_naming_its_type(name: str, obj: object, type_name: str) -> None:
    with pytest.raises(SerializationError, match=type_name):
        get_serializer(name).dumps(obj)


def test_unsupported_tzinfo_raises_serialization_error() -> None:
    class OddTZ(tzinfo):
        def utcoffset(self, dt: object) -> timedelta:
            return timedelta(0)

    obj = datetime(2020, 1, 1, tzinfo=OddTZ())
    for name in ["msgpack", "json"]:
        with pytest.raises(SerializationError, match="OddTZ"):
            get_serializer(name).dumps(obj)


def test_cloudpickle_handles_arbitrary_objects() -> None:
    fn = lambda x: x + 1  # noqa: E731
    assert roundtrip("cloudpickle", fn)(1) == 2
    assert roundtrip("cloudpickle", Custom(5)).x == 5


def test_cloudpickle_failure_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError, match="lock"):
        get_serializer("cloudpickle").dumps(threading.Lock())


@pytest.mark.parametrize(
    ("obj", "expected"),
    [
        ({"a": [1, (2, 3)], "when": datetime(2020, 1, 1)}, "msgpack"),
        (Custom(3), "cloudpickle"),
        ({"x": Custom(3)}, "cloudpickle"),
        (Color.RED, "cloudpickle"),
    ],
)
def test_dumps_with_fallback(obj: object, expected: str) -> None:
    name, data = dumps_with_fallback(obj)
    assert name == expected
    value = get_serializer(name).loads(data)
    if expected == "msgpack":
        assert_same(value, obj)
    else:
        assert type(value) is type(obj)


def test_dumps_with_fallback_raises_when_nothing_can_encode() -> None:
    with pytest.raises(SerializationError, match="lock"):
        dumps_with_fallback({"lock": threading.Lock()})


def test_json_is_readable_standard_utf8() -> None:
    data = get_serializer("json").dumps({"name": "café", "inf": math.inf, "at": date(2024, 5, 1)})
    text = data.decode("utf-8")
    assert "café" in text and "2024-05-01" in text
    assert "Infinity" not in text  # non-finite floats are tagged, so any JSON parser reads it
    assert json.loads(text)["at"] == {"$type": "date", "value": "2024-05-01"}


def test_msgpack_is_more_compact_than_json_and_compression_helps() -> None:
    obj = {"rows": [{"id": i, "name": f"name-{i % 7}", "ok": True} for i in range(500)]}
    packed = get_serializer("msgpack").dumps(obj)
    assert len(packed) < len(get_serializer("json").dumps(obj))
    assert len(get_serializer("compressed/msgpack").dumps(obj)) < len(packed) / 3
