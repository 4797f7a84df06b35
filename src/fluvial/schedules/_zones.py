"""Time zones and local wall-clock time: one place that knows about DST.

    zone(name, owner)            a ``tzinfo`` for an IANA name (``None`` -> UTC); bad names
                                 are a ``ValueError`` naming the schedule and field
    to_utc(dt, field, owner)     an aware datetime in UTC; a naive one is refused
    resolve_local(naive, tz)     a local wall-clock time as a real instant: a time that
                                 does not exist (the spring-forward gap) becomes the first
                                 instant after the gap; a repeated one (fall back) its
                                 first occurrence

Only ``zoneinfo`` is used; nothing here is imported by ``import fluvial``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

__all__ = ["UTC_NAME", "resolve_local", "to_utc", "zone", "zone_name"]

UTC_NAME = "UTC"
_MINUTE = timedelta(minutes=1)


def zone(name: str | None, owner: str) -> tzinfo:
    """The zone called ``name`` (UTC when None); ``owner`` names the schedule in errors."""
    if name is None or name == UTC_NAME:
        return UTC
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(
            f"{owner}: timezone {name!r} is not a known IANA time zone "
            "(e.g. 'Europe/London', 'America/New_York', 'UTC')"
        ) from exc


def zone_name(value: object, owner: str) -> str | None:
    """A ``timezone=`` argument (a name, a ``ZoneInfo``, UTC or None) as a zone name."""
    if value is None:
        return None
    if isinstance(value, str):
        name = value.strip()
        if name.upper() in ("UTC", "Z", "ETC/UTC"):
            return UTC_NAME
        zone(name, owner)  # validate now, with the schedule's name in the error
        return name
    if value is UTC:
        return UTC_NAME
    key = getattr(value, "key", None)
    if isinstance(key, str):
        return zone_name(key, owner)
    raise TypeError(
        f"{owner}: timezone must be an IANA zone name such as 'Europe/London' "
        f"(or a zoneinfo.ZoneInfo), got {value!r}"
    )


def to_utc(dt: object, field: str, owner: str) -> datetime:
    """``dt`` as an aware UTC datetime; a naive datetime is a ``ValueError`` naming ``field``."""
    if not isinstance(dt, datetime):
        raise TypeError(f"{owner}: {field} must be a datetime, got {type(dt).__name__}")
    if dt.tzinfo is None or dt.utcoffset() is None:
        raise ValueError(
            f"{owner}: {field} must be timezone-aware (e.g. datetime.now(timezone.utc)), "
            f"got the naive datetime {dt.isoformat()}"
        )
    return dt.astimezone(UTC)


def _exists(naive: datetime, tz: tzinfo) -> bool:
    aware = naive.replace(tzinfo=tz, fold=0)
    return aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive


def resolve_local(naive: datetime, tz: tzinfo) -> datetime:
    """The instant (aware, UTC) at which local wall-clock time ``naive`` happens in ``tz``.

    In a spring-forward gap the wall-clock time never happens: the answer is the
    first minute after the gap (cron's rule, as Debian cron and cronsim apply it).
    In a fall-back overlap it happens twice: the answer is the first occurrence.
    """
    if tz is UTC:
        return naive.replace(tzinfo=UTC)
    probe = naive
    if not _exists(probe, tz):
        # step to the next whole minute, then minute by minute out of the gap
        probe = probe.replace(second=0, microsecond=0) + _MINUTE
        while not _exists(probe, tz):
            probe += _MINUTE
    return probe.replace(tzinfo=tz, fold=0).astimezone(UTC)
