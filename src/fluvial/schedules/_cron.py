"""``Cron``: a five-field cron expression in a time zone, evaluated by cronsim.

cronsim applies Debian cron's DST rules, which this wrapper keeps:

- a schedule at fixed times (neither the minute nor the hour field starts with
  ``*``): a local time that does not exist (the spring-forward gap) fires once, at
  the first minute after the gap; a local time that happens twice (fall back) fires
  once, the first time;
- a schedule whose minute or hour field starts with ``*`` (``*``, ``*/2``) follows
  real elapsed time: a repeated local time fires in both passes, and the wall times
  inside a gap never happen, so they do not fire.

``day_or=True`` (the default, as in cron and Prefect) fires when the day of month
*or* the day of week matches, if both are restricted; ``day_or=False`` needs both.
Macros ``@yearly``/``@annually``, ``@monthly``, ``@weekly``, ``@daily``/``@midnight``
and ``@hourly`` are accepted. cronsim is imported when a ``Cron`` is made.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, date, datetime, timedelta, tzinfo
from datetime import timezone as dt_timezone
from functools import lru_cache
from typing import Any

from fluvial.schedules._base import DEFAULT_MAX_CATCHUP_RUNS, Schedule
from fluvial.schedules._zones import UTC_NAME, to_utc, zone, zone_name

__all__ = ["Cron"]

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# "5-5/2" is the single value 5 (Vixie cron); cronsim would read it as "5/2", i.e. 5-59/2
_ONE_VALUE_RANGE = re.compile(r"(?<![\w-])(\d+)-\1/\d+(?![\w-])")
_FIELDS = ("minute", "hour", "day-of-month", "month", "day-of-week")
# day_or=False over a rare day (Friday the 13th of February...): give up after this many
# candidate days rather than loop for ever on an expression that never matches
_MAX_SKIPPED_CANDIDATES = 100_000
_SECOND = timedelta(seconds=1)
_DAY = timedelta(days=1)
_OFFSET_HORIZON_DAYS = 370


def normalize_cron(expr: object, owner: str) -> str:
    """``expr`` with macros expanded, single spaces and upper-case names; checked by cronsim."""
    if not isinstance(expr, str):
        raise TypeError(f"{owner}: cron must be a string such as '0 9 * * *', got {expr!r}")
    text = " ".join(expr.split())
    if text.startswith("@"):
        if text.lower() not in _MACROS:
            raise ValueError(f"{owner}: cron macro {text!r} is not supported; use one of "
                             f"{', '.join(_MACROS)} or five fields")
        text = _MACROS[text.lower()]
    text = _ONE_VALUE_RANGE.sub(r"\1", text.upper())
    fields = text.split(" ") if text else []
    if len(fields) != 5:
        raise ValueError(f"{owner}: cron must have five fields (minute hour day-of-month "
                         f"month day-of-week), got {len(fields)} in {expr!r}")
    from cronsim import CronSim, CronSimError

    try:
        CronSim(text, datetime(2020, 1, 1))
    except CronSimError as exc:
        raise ValueError(f"{owner}: cron {expr!r} is invalid: {_explain(str(exc), fields)}") from exc
    return text


def _explain(message: str, fields: list[str]) -> str:
    # cronsim says "Bad minute"; name the field's text too
    for name, value in zip(_FIELDS, fields, strict=True):
        if message.lower() == f"bad {name}":
            return f"bad {name} field {value!r}"
    return message


class Cron(Schedule):
    """Fire at the times a cron expression matches, in ``timezone`` (UTC by default).

    ``Cron("0 9 * * MON-FRI", timezone="Europe/London")`` fires at 09:00 London time
    on weekdays, summer and winter. See the module docstring for the DST rules.
    """

    kind = "cron"
    __slots__ = ("_cron", "_day_or")

    def __init__(
        self,
        cron: str,
        timezone: Any = None,
        day_or: bool = True,
        active: bool = True,
        parameters: Mapping[str, Any] | None = None,
        slug: str | None = None,
        *,
        catchup: str = "latest",
        max_catchup_runs: int = DEFAULT_MAX_CATCHUP_RUNS,
        overlap: str = "allow_all",
        max_lateness: timedelta | float | None = None,
    ) -> None:
        owner = f"Cron({cron!r})"
        self._cron = normalize_cron(cron, owner)
        self._timezone = zone_name(timezone, owner)
        self._tz = zone(self._timezone, owner)
        if not isinstance(day_or, bool):
            raise TypeError(f"{owner}: day_or must be True or False, got {day_or!r}")
        self._day_or = day_or
        self._init_common(active, parameters, slug, catchup, max_catchup_runs, overlap,
                          max_lateness)

    @property
    def cron(self) -> str:
        return self._cron

    @property
    def day_or(self) -> bool:
        return self._day_or

    def _owner(self) -> str:
        return f"Cron({self._cron!r})"

    def _timing(self) -> dict[str, Any]:
        return {"cron": self._cron, "timezone": self._timezone or UTC_NAME,
                "day_or": self._day_or}

    def _fixed_time(self) -> bool:
        """Debian cron's "fixed-time job": neither minute nor hour starts with '*'."""
        minute, hour = self._cron.split(" ")[:2]
        return self._tz is not UTC and not minute.startswith("*") and not hour.startswith("*")

    def fire_times(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``after`` (aware), ascending, as aware UTC datetimes."""
        start = to_utc(after, "after", self._owner())
        local_times = self._fixed_times(start) if self._fixed_time() else self._real_times(start)
        day_ok = self._both_days_filter()
        misses = 0
        for local in local_times:
            if day_ok is not None:
                if not day_ok(local.date()):
                    misses += 1
                    if misses > _MAX_SKIPPED_CANDIDATES:
                        return
                    continue
                misses = 0
            yield local.astimezone(UTC)

    def _fixed_times(self, start: datetime) -> Iterator[datetime]:
        # cronsim walks wall-clock time and applies Debian's fixes itself
        from cronsim import CronSim

        last = start
        for fire in CronSim(self._cron, start.astimezone(self._tz)):
            if fire.astimezone(UTC) > last:  # not the first pass of a repeated time behind us
                last = fire.astimezone(UTC)
                yield fire

    def _real_times(self, start: datetime) -> Iterator[datetime]:
        # real elapsed time: between two offset changes the zone is a fixed offset, where
        # wall-clock and real time agree; walk each such stretch with cronsim
        from cronsim import CronSim

        begin = start
        first = True
        while True:
            offset = begin.astimezone(self._tz).utcoffset()
            assert offset is not None
            end = _next_offset_change(self._tz, begin, offset) if self._tz is not UTC else None
            fixed = dt_timezone(offset)
            origin = begin if first else begin - _SECOND  # a later stretch may fire at its start
            first = False
            for fire in CronSim(self._cron, origin.astimezone(fixed)):
                if end is not None and fire >= end:
                    break
                yield fire.astimezone(self._tz)
            else:
                return  # cronsim found nothing in 50 years
            assert end is not None
            begin = end

    def _both_days_filter(self) -> Callable[[date], bool] | None:
        """For ``day_or=False`` with both day fields restricted: a day must match both."""
        from cronsim import CronSim

        fields = self._cron.split(" ")
        if self._day_or or fields[2].startswith("*") or fields[4].startswith("*"):
            return None  # Debian cron ORs the two day fields only when neither starts with '*'
        dom_only = CronSim(f"0 0 {fields[2]} * *", datetime(2020, 1, 1))
        dow_only = CronSim(f"0 0 * * {fields[4]}", datetime(2020, 1, 1))
        return lambda day: dom_only.match_day(day) and dow_only.match_day(day)


def _next_offset_change(tz: tzinfo, after: datetime, offset: timedelta) -> datetime:
    """The first instant after ``after`` at which ``tz``'s offset is not ``offset``.

    Looks a day at a time up to a year ahead (then returns that instant: a stretch
    may end without a change), and bisects the day of the change to the second.
    Remembered per zone and UTC day, since every tick asks again.
    """
    day = after.replace(hour=0, minute=0, second=0, microsecond=0)
    if day.astimezone(tz).utcoffset() == offset:
        change = _offset_change_after_day(tz, day, offset)
        if change > after:  # no change between the day's start and `after`
            return change
    return _search_offset_change(tz, after, offset)


@lru_cache(maxsize=1024)
def _offset_change_after_day(tz: tzinfo, day: datetime, offset: timedelta) -> datetime:
    return _search_offset_change(tz, day, offset)


def _search_offset_change(tz: tzinfo, after: datetime, offset: timedelta) -> datetime:
    low = after
    for _ in range(_OFFSET_HORIZON_DAYS):
        high = low + _DAY
        if high.astimezone(tz).utcoffset() != offset:
            while high - low > _SECOND:
                middle = low + (high - low) / 2
                middle = middle.replace(microsecond=0) if middle - low > _SECOND else middle
                if middle.astimezone(tz).utcoffset() != offset:
                    high = middle
                else:
                    low = middle
            return high
        low = high
    return low
