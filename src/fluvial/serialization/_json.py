"""The ``json`` codec: human-readable UTF-8 JSON (stdlib ``json``) with exact round-trips.

JSON-native values are written as themselves. Other supported values become tagged
objects ``{"$type": <tag>, ...}``: tuple, set, frozenset, bytes (base64), datetime and
time (ISO text plus an exact ``tz`` spec), date, timedelta, UUID, Decimal, complex,
non-finite floats (so the output stays standard JSON), and dicts whose keys are not all
strings or that contain a ``"$type"`` key themselves (``{"$type": "dict", "items":
[[k, v], ...]}``). The supported types match the msgpack codec, bytearray included
(written and read back as bytes).
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from ._errors import SerializationError
from ._tz import decode_tz, encode_tz

__all__ = ["json_dumps", "json_loads"]

TAG = "$type"
_NATIVE: frozenset[type] = frozenset({str, int, bool, type(None)})


def _b64(data: bytes | bytearray) -> str:
    return base64.b64encode(data).decode("ascii")


def _iso_tagged(tag: str, obj: datetime | time) -> dict[str, Any]:
    out: dict[str, Any] = {TAG: tag, "value": obj.isoformat()}
    if obj.tzinfo is not None:
        out["tz"] = encode_tz(obj.tzinfo)
    if obj.fold:
        out["fold"] = 1
    return out


def _encode_dict(obj: dict[Any, Any]) -> Any:
    if TAG not in obj and all(type(k) is str for k in obj):
        return {k: v if type(v) in _NATIVE else _encode(v) for k, v in obj.items()}
    return {TAG: "dict", "items": [[_encode(k), _encode(v)] for k, v in obj.items()]}


def _encode_float(obj: float) -> Any:
    return obj if math.isfinite(obj) else {TAG: "float", "value": repr(obj)}


_ENCODERS: dict[type, Callable[[Any], Any]] = {
    dict: _encode_dict,
    list: lambda o: [v if type(v) in _NATIVE else _encode(v) for v in o],
    float: _encode_float,
    tuple: lambda o: {TAG: "tuple", "items": [_encode(v) for v in o]},
    set: lambda o: {TAG: "set", "items": [_encode(v) for v in o]},
    frozenset: lambda o: {TAG: "frozenset", "items": [_encode(v) for v in o]},
    bytes: lambda o: {TAG: "bytes", "base64": _b64(o)},
    bytearray: lambda o: {TAG: "bytes", "base64": _b64(o)},
    datetime: lambda o: _iso_tagged("datetime", o),
    time: lambda o: _iso_tagged("time", o),
    date: lambda o: {TAG: "date", "value": o.isoformat()},
    timedelta: lambda o: {TAG: "timedelta", "value": [o.days, o.seconds, o.microseconds]},
    UUID: lambda o: {TAG: "uuid", "value": str(o)},
    Decimal: lambda o: {TAG: "decimal", "value": str(o)},
    complex: lambda o: {TAG: "complex", "value": [_encode_float(o.real), _encode_float(o.imag)]},
}


def _encode(obj: Any) -> Any:
    cls = type(obj)
    if cls in _NATIVE:
        return obj
    encoder = _ENCODERS.get(cls)
    if encoder is None:
        raise SerializationError(
            f"json serializer cannot encode object of type {cls.__module__}.{cls.__qualname__}"
        )
    return encoder(obj)


def _with_tz(value: datetime | time, tagged: dict[str, Any]) -> Any:
    return value.replace(tzinfo=decode_tz(tagged.get("tz")), fold=tagged.get("fold", 0))


_DECODERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "dict": lambda t: {k: v for k, v in t["items"]},
    "float": lambda t: float(t["value"]),
    "tuple": lambda t: tuple(t["items"]),
    "set": lambda t: set(t["items"]),
    "frozenset": lambda t: frozenset(t["items"]),
    "bytes": lambda t: base64.b64decode(t["base64"]),
    "datetime": lambda t: _with_tz(datetime.fromisoformat(t["value"]), t),
    "time": lambda t: _with_tz(time.fromisoformat(t["value"]), t),
    "date": lambda t: date.fromisoformat(t["value"]),
    "timedelta": lambda t: timedelta(*t["value"]),
    "uuid": lambda t: UUID(t["value"]),
    "decimal": lambda t: Decimal(t["value"]),
    "complex": lambda t: complex(*t["value"]),
}


def _object_hook(obj: dict[str, Any]) -> Any:
    tag = obj.get(TAG)
    if tag is None:
        return obj
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise ValueError(f"unknown {TAG!r} tag {tag!r} in JSON payload")
    return decoder(obj)


def json_dumps(obj: Any) -> bytes:
    """Encode as UTF-8 JSON; raise ``SerializationError`` naming any unsupported type."""
    try:
        text = json.dumps(_encode(obj), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8")
    except RecursionError as exc:
        raise SerializationError(
            "json serializer cannot encode a self-referential or too deeply nested object"
        ) from exc
    except UnicodeEncodeError as exc:
        raise SerializationError(f"json serializer cannot encode a string as UTF-8: {exc}") from exc


def json_loads(data: bytes) -> Any:
    """Decode bytes written by :func:`json_dumps`."""
    return json.loads(data, object_hook=_object_hook)
