"""The ``msgpack`` codec: plain data, fast and compact, with exact round-trips.

Beyond msgpack's native types (None, bool, int, float, str, bytes, list, dict), these
types round-trip with their exact type preserved, each as a msgpack ExtType:

    ====  ==========================================================
    code  type (payload)
    ====  ==========================================================
    1     tuple (packed array)
    2     set (packed array)
    3     frozenset (packed array)
    4     datetime ([y, m, d, H, M, S, us, fold, tz spec])
    5     date (packed proleptic ordinal)
    6     time ([H, M, S, us, fold, tz spec])
    7     timedelta ([days, seconds, microseconds])
    8     uuid.UUID (16 raw bytes)
    9     decimal.Decimal (ASCII ``str(d)``)
    10    int beyond 64 bits (two's-complement big-endian bytes)
    11    complex (two big-endian float64)
    ====  ==========================================================

Types are matched exactly (``strict_types``): subclasses such as ``OrderedDict``,
``IntEnum`` or a ``datetime`` subclass are not silently flattened to their base type;
they raise ``SerializationError`` naming the type, so ``dumps_with_fallback`` sends
them to cloudpickle instead. The one exception is msgpack's own: ``bytearray`` and
``memoryview`` are written as binary and read back as ``bytes``. Dict keys may be any of the hashable types above.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from functools import partial
from typing import Any
from uuid import UUID

import msgpack
from msgpack import ExtType

from ._errors import SerializationError
from ._tz import decode_tz, encode_tz

__all__ = ["msgpack_dumps", "msgpack_loads", "packb_strict", "to_ext"]

EXT_TUPLE = 1
EXT_SET = 2
EXT_FROZENSET = 3
EXT_DATETIME = 4
EXT_DATE = 5
EXT_TIME = 6
EXT_TIMEDELTA = 7
EXT_UUID = 8
EXT_DECIMAL = 9
EXT_BIGINT = 10
EXT_COMPLEX = 11

_COMPLEX = struct.Struct(">dd")


def _bigint_bytes(value: int) -> bytes:
    return value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True)


_ENCODERS: dict[type, Callable[[Any], ExtType]] = {
    tuple: lambda o: ExtType(EXT_TUPLE, packb_strict(list(o))),
    set: lambda o: ExtType(EXT_SET, packb_strict(list(o))),
    frozenset: lambda o: ExtType(EXT_FROZENSET, packb_strict(list(o))),
    datetime: lambda o: ExtType(
        EXT_DATETIME,
        packb_strict(
            [
                o.year,
                o.month,
                o.day,
                o.hour,
                o.minute,
                o.second,
                o.microsecond,
                o.fold,
                encode_tz(o.tzinfo),
            ]
        ),
    ),
    date: lambda o: ExtType(EXT_DATE, packb_strict(o.toordinal())),
    time: lambda o: ExtType(
        EXT_TIME,
        packb_strict([o.hour, o.minute, o.second, o.microsecond, o.fold, encode_tz(o.tzinfo)]),
    ),
    timedelta: lambda o: ExtType(EXT_TIMEDELTA, packb_strict([o.days, o.seconds, o.microseconds])),
    UUID: lambda o: ExtType(EXT_UUID, o.bytes),
    Decimal: lambda o: ExtType(EXT_DECIMAL, str(o).encode("ascii")),
    int: lambda o: ExtType(EXT_BIGINT, _bigint_bytes(o)),  # only reached on 64-bit overflow
    complex: lambda o: ExtType(EXT_COMPLEX, _COMPLEX.pack(o.real, o.imag)),
}


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def to_ext(obj: Any) -> ExtType:
    """The ExtType for one object of a supported non-native type, else SerializationError."""
    encoder = _ENCODERS.get(type(obj))
    if encoder is None:
        raise SerializationError(
            f"msgpack serializer cannot encode object of type {_type_name(obj)}; "
            "use the 'cloudpickle' serializer or dumps_with_fallback()"
        )
    return encoder(obj)


packb_strict: Callable[[Any], bytes] = partial(
    msgpack.packb, default=to_ext, strict_types=True, use_bin_type=True
)


def _date_time(data: bytes) -> datetime:
    y, mo, d, h, mi, s, us, fold, tz = msgpack.unpackb(data)
    return datetime(y, mo, d, h, mi, s, us, tzinfo=decode_tz(tz), fold=fold)


def _time(data: bytes) -> time:
    h, mi, s, us, fold, tz = msgpack.unpackb(data)
    return time(h, mi, s, us, tzinfo=decode_tz(tz), fold=fold)


_DECODERS: dict[int, Callable[[bytes], Any]] = {
    EXT_TUPLE: lambda b: tuple(_unpackb(b)),
    EXT_SET: lambda b: set(_unpackb(b)),
    EXT_FROZENSET: lambda b: frozenset(_unpackb(b)),
    EXT_DATETIME: _date_time,
    EXT_DATE: lambda b: date.fromordinal(msgpack.unpackb(b)),
    EXT_TIME: _time,
    EXT_TIMEDELTA: lambda b: timedelta(*msgpack.unpackb(b)),
    EXT_UUID: lambda b: UUID(bytes=b),
    EXT_DECIMAL: lambda b: Decimal(b.decode("ascii")),
    EXT_BIGINT: lambda b: int.from_bytes(b, "big", signed=True),
    EXT_COMPLEX: lambda b: complex(*_COMPLEX.unpack(b)),
}


def _ext_hook(code: int, data: bytes) -> Any:
    decoder = _DECODERS.get(code)
    return ExtType(code, data) if decoder is None else decoder(data)


_unpackb: Callable[[bytes], Any] = partial(
    msgpack.unpackb, ext_hook=_ext_hook, strict_map_key=False, raw=False
)


def msgpack_dumps(obj: Any) -> bytes:
    """Encode plain data; raise ``SerializationError`` naming any unsupported type."""
    try:
        return packb_strict(obj)
    except SerializationError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:  # e.g. lone surrogates, deep nesting
        raise SerializationError(
            f"msgpack serializer cannot encode object of type {_type_name(obj)}: {exc}"
        ) from exc


def msgpack_loads(data: bytes) -> Any:
    """Decode bytes written by :func:`msgpack_dumps`."""
    return _unpackb(data)
