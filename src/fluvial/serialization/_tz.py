"""Exact, portable encoding of ``tzinfo`` objects, shared by the msgpack and JSON codecs.

A spec is plain data: ``None`` (naive), ``[offset_us]`` or ``[offset_us, name]`` for a
``datetime.timezone`` (``[0]`` decodes to the ``timezone.utc`` singleton), or a zone key
string for a ``zoneinfo.ZoneInfo``. Any other tzinfo raises ``SerializationError``.
"""

from __future__ import annotations

from datetime import timedelta, timezone, tzinfo
from typing import Any

from ._errors import SerializationError

_US = timedelta(microseconds=1)


def encode_tz(tz: tzinfo | None) -> Any:
    if tz is None:
        return None
    if type(tz) is timezone:
        args = tz.__getinitargs__()  # type: ignore[attr-defined]
        offset_us = args[0] // _US
        return [offset_us] if len(args) == 1 else [offset_us, args[1]]
    import zoneinfo

    if type(tz) is zoneinfo.ZoneInfo and tz.key is not None:
        return tz.key
    raise SerializationError(
        f"cannot encode tzinfo of type {type(tz).__module__}.{type(tz).__qualname__}: "
        "only datetime.timezone and zoneinfo.ZoneInfo (with a key) are supported"
    )


def decode_tz(spec: Any) -> tzinfo | None:
    if spec is None:
        return None
    if isinstance(spec, str):
        import zoneinfo

        return zoneinfo.ZoneInfo(spec)
    offset = timedelta(microseconds=spec[0])
    return timezone(offset) if len(spec) == 1 else timezone(offset, spec[1])
