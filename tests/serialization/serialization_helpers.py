"""Shared strategies and exact-comparison helpers for the serialization tests."""

from __future__ import annotations

import json
import struct
import zlib
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any
from uuid import UUID

from hypothesis import strategies as st

_offsets = st.timedeltas(
    min_value=timedelta(hours=-23, minutes=59, seconds=59),
    max_value=timedelta(hours=23, minutes=59),
)
fixed_timezones = st.one_of(
    st.just(UTC),
    st.builds(timezone, _offsets),
    st.builds(timezone, _offsets, st.text(min_size=1, max_size=8)),
)
any_timezones = st.one_of(st.none(), fixed_timezones, st.timezones())


def _scalars(allow_nan: bool) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.integers(min_value=-(2**200), max_value=2**200),
        st.floats(allow_nan=allow_nan),
        st.text(max_size=20),
        st.binary(max_size=20),
        st.datetimes(timezones=any_timezones),
        st.dates(),
        st.times(timezones=st.one_of(st.none(), fixed_timezones)),
        st.timedeltas(),
        st.uuids(),
        st.decimals(allow_nan=allow_nan),
        st.complex_numbers(allow_nan=allow_nan),
    )


hashables = st.recursive(
    _scalars(allow_nan=False),
    lambda inner: st.one_of(
        st.tuples(inner, inner),
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(inner, max_size=3),
    ),
    max_leaves=6,
)

plain_data = st.recursive(
    st.one_of(_scalars(allow_nan=True), hashables),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
        st.dictionaries(hashables, inner, max_size=4),
    ),
    max_leaves=20,
)


def _tz_fp(tz: Any) -> Any:
    if tz is None:
        return None
    if type(tz) is timezone:
        return ("timezone", tz.__getinitargs__(), tz is UTC)
    return (type(tz).__qualname__, tz.key)


def fingerprint(obj: Any) -> Any:
    """A hashable value equal for two objects only if they match exactly, types included
    (tzinfo objects and names, fold, NaN, -0.0, dict order)."""
    cls = type(obj)
    if cls in (float, complex, Decimal):
        return (cls.__name__, repr(obj))
    if cls in (datetime, time):
        return (cls.__name__, obj.replace(tzinfo=None).isoformat(), obj.fold, _tz_fp(obj.tzinfo))
    if cls in (list, tuple):
        return (cls.__name__, tuple(fingerprint(x) for x in obj))
    if cls in (set, frozenset):
        return (cls.__name__, frozenset(fingerprint(x) for x in obj))
    if cls is dict:
        return ("dict", tuple((fingerprint(k), fingerprint(v)) for k, v in obj.items()))
    if cls in (type(None), bool, int, str, bytes, date, timedelta, UUID):
        return (cls.__name__, obj)
    raise AssertionError(f"fingerprint: unexpected type {cls}")


def assert_same(actual: Any, expected: Any) -> None:
    assert fingerprint(actual) == fingerprint(expected), f"{actual!r} != {expected!r}"


def make_record(header: dict[str, Any], payload: bytes, *, version: int = 1) -> bytes:
    """A record built by hand from the documented layout (see storage.py)."""
    raw = json.dumps(header).encode()
    return struct.pack(">4sBII", b"FLVR", version, len(raw), zlib.crc32(raw)) + raw + payload
