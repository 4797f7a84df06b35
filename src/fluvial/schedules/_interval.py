"""``Interval``: every N seconds from an anchor date.

An interval of 24 hours or more keeps the wall-clock time in its time zone: a daily
interval anchored at 09:00 fires at 09:00 local time after a DST change (the
anchor's local time plus whole multiples of the interval, in wall-clock terms; a
time in the spring-forward gap fires at the first minute after it, a repeated time
fires once, the first time). A shorter interval is absolute: every N seconds of
real time from the anchor, whatever the clocks say.

The anchor defaults to 2020-01-01 00:00 in the schedule's time zone, so an
unchanged schedule fires at the same times in every process.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from fluvial.schedules._base import DEFAULT_MAX_CATCHUP_RUNS, Schedule
from fluvial.schedules._zones import UTC_NAME, resolve_local, to_utc, zone, zone_name

__all__ = ["WALL_CLOCK_MIN", "Interval"]

WALL_CLOCK_MIN = timedelta(hours=24)
MIN_INTERVAL = timedelta(seconds=1)  # a scheduler decides fire times, not a busy loop
_DEFAULT_ANCHOR = datetime(2020, 1, 1)


class Interval(Schedule):
    """Fire every ``interval`` (a ``timedelta`` or seconds) from ``anchor_date``."""

    kind = "interval"
    __slots__ = ("_interval", "_anchor", "_anchor_local")

    def __init__(
        self,
        interval: timedelta | float,
        anchor_date: datetime | str | None = None,
        timezone: Any = None,
        active: bool = True,
        parameters: Mapping[str, Any] | None = None,
        slug: str | None = None,
        *,
        catchup: str = "latest",
        max_catchup_runs: int = DEFAULT_MAX_CATCHUP_RUNS,
        overlap: str = "allow_all",
        max_lateness: timedelta | float | None = None,
    ) -> None:
        owner = f"Interval({interval!r})"
        if isinstance(interval, bool) or not isinstance(interval, (timedelta, int, float)):
            raise TypeError(f"{owner}: interval must be a timedelta or a number of seconds, "
                            f"got {type(interval).__name__}")
        if not isinstance(interval, timedelta):
            if not math.isfinite(interval):
                raise ValueError(f"{owner}: interval must be a finite number of seconds")
            interval = timedelta(seconds=interval)
        if interval < MIN_INTERVAL:
            raise ValueError(f"{owner}: interval must be at least 1 second, got "
                             f"{interval.total_seconds():g} seconds")
        owner = f"Interval({interval.total_seconds():g}s)"
        self._interval = interval
        if isinstance(anchor_date, str):
            try:
                anchor_date = datetime.fromisoformat(anchor_date)
            except ValueError as exc:
                raise ValueError(f"{owner}: anchor_date {anchor_date!r} is not an ISO 8601 "
                                 "date-time") from exc
        if anchor_date is not None and not isinstance(anchor_date, datetime):
            raise TypeError(f"{owner}: anchor_date must be a datetime, got {anchor_date!r}")
        if timezone is None and anchor_date is not None and anchor_date.tzinfo is not None:
            # the anchor's own zone, if it has an IANA name; otherwise its instant in UTC
            key = getattr(anchor_date.tzinfo, "key", None)
            timezone = key if isinstance(key, str) else None
        self._timezone = zone_name(timezone, owner)
        self._tz = zone(self._timezone, owner)
        if anchor_date is None:
            anchor_local = _DEFAULT_ANCHOR
        elif anchor_date.tzinfo is None:
            anchor_local = anchor_date
        else:
            anchor_local = anchor_date.astimezone(self._tz).replace(tzinfo=None)
        self._anchor_local = anchor_local  # wall-clock time in the zone
        self._anchor = resolve_local(anchor_local, self._tz)  # the instant, UTC
        self._init_common(active, parameters, slug, catchup, max_catchup_runs, overlap,
                          max_lateness)

    @property
    def interval(self) -> timedelta:
        return self._interval

    @property
    def anchor_date(self) -> datetime:
        """The anchor as an aware datetime in the schedule's zone."""
        return self._anchor.astimezone(self._tz)

    @property
    def keeps_wall_clock(self) -> bool:
        """True for intervals of 24 hours or more (see the module docstring)."""
        return self._interval >= WALL_CLOCK_MIN

    def _owner(self) -> str:
        return f"Interval({self._interval.total_seconds():g}s)"

    def _timing(self) -> dict[str, Any]:
        return {"interval": self._interval.total_seconds(),
                "anchor_date": self._anchor_local.isoformat(),
                "timezone": self._timezone or UTC_NAME}

    def fire_times(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``after`` (aware), ascending, as aware UTC datetimes."""
        start = to_utc(after, "after", self._owner())
        if self.keeps_wall_clock and self._tz is not UTC:
            yield from self._wall_clock_times(start)
            return
        # absolute: anchor + k * interval, k the first with a time after `start`
        k = math.floor((start - self._anchor) / self._interval) + 1
        fire = self._anchor + k * self._interval
        while fire <= start:  # float rounding in the division above
            k += 1
            fire = self._anchor + k * self._interval
        while True:
            yield fire
            k += 1
            fire = self._anchor + k * self._interval

    def _wall_clock_times(self, start: datetime) -> Iterator[datetime]:
        local = start.astimezone(self._tz).replace(tzinfo=None)
        # a step back covers the hours a DST change can put between wall clock and instant
        k = math.floor((local - self._anchor_local) / self._interval) - 1
        last = start
        while True:
            fire = resolve_local(self._anchor_local + k * self._interval, self._tz)
            k += 1
            if fire > last:
                last = fire
                yield fire
