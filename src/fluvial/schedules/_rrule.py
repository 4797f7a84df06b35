"""``RRule``: an iCalendar recurrence rule (RFC 5545), evaluated by python-dateutil.

The rule is evaluated in wall-clock time in its time zone, as calendars do: a
``DTSTART;TZID=Europe/Paris:...`` names the zone (it must agree with
``timezone=`` if both are given), a ``DTSTART`` ending in ``Z`` means UTC, and a
rule without DTSTART starts at 2020-01-01 00:00 in the zone (a fixed date, so the
schedule fires at the same times in every process; Prefect does the same). A
time in the spring-forward gap fires at the first minute after it; a repeated
time fires once, the first time. ``RRULE``, ``RDATE``, ``EXRULE`` and ``EXDATE``
lines are accepted. dateutil is imported when an ``RRule`` is made.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta
from typing import Any

from fluvial.schedules._base import DEFAULT_MAX_CATCHUP_RUNS, Schedule
from fluvial.schedules._zones import UTC_NAME, resolve_local, to_utc, zone, zone_name

__all__ = ["RRule"]

_DEFAULT_DTSTART = datetime(2020, 1, 1)
_TZID = re.compile(r"^DTSTART;TZID=([^:;]+):", re.IGNORECASE | re.MULTILINE)
_UTC_DTSTART = re.compile(r"^DTSTART(?:;[^:]*)?:\d{8}T\d{6}Z\s*$", re.IGNORECASE | re.MULTILINE)
# for wall-clock evaluation: a TZID parameter, and the Z of a UTC date-time
_TZ_PARAM = re.compile(r";TZID=[^:;]+", re.IGNORECASE)
_UTC_SUFFIX = re.compile(r"(\d{8}T\d{6})Z", re.IGNORECASE)
# how far back of `after` (in wall-clock time) to look, so no DST shift hides a time
_LOOKBACK = timedelta(days=2)


class RRule(Schedule):
    """Fire at the times an RFC 5545 recurrence rule lists, in ``timezone``."""

    kind = "rrule"
    __slots__ = ("_rrule", "_rule")

    def __init__(
        self,
        rrule: str,
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
        owner = f"RRule({rrule!r})"
        if not isinstance(rrule, str) or not rrule.strip():
            raise TypeError(f"{owner}: rrule must be a non-empty string such as "
                            "'FREQ=DAILY;BYHOUR=9'")
        text = "\n".join(line.strip() for line in rrule.strip().splitlines() if line.strip())
        self._rrule = text
        tzid = _TZID.search(text)
        named = zone_name(tzid.group(1), owner) if tzid else None
        if named is None and _UTC_DTSTART.search(text):
            named = UTC_NAME
        given = zone_name(timezone, owner)
        if named is not None and given is not None and named != given:
            raise ValueError(f"{owner}: timezone={given!r} disagrees with the rule's DTSTART "
                             f"zone {named!r}; give one of them")
        self._timezone = given or named
        self._tz = zone(self._timezone, owner)
        from dateutil.rrule import rrulestr

        try:
            # wall-clock evaluation: the zone was read above; dateutil sees local times
            wall = _UTC_SUFFIX.sub(r"\1", _TZ_PARAM.sub("", text))
            self._rule = rrulestr(wall, dtstart=_DEFAULT_DTSTART, forceset=True, cache=True)
        except (ValueError, TypeError, KeyError, IndexError) as exc:
            raise ValueError(f"{owner}: rrule is not a valid RFC 5545 recurrence rule: "
                             f"{exc}") from exc
        self._init_common(active, parameters, slug, catchup, max_catchup_runs, overlap,
                          max_lateness)

    @property
    def rrule(self) -> str:
        return self._rrule

    def _owner(self) -> str:
        first = self._rrule.splitlines()[0] if self._rrule else ""
        return f"RRule({first!r})"

    def _timing(self) -> dict[str, Any]:
        return {"rrule": self._rrule, "timezone": self._timezone or UTC_NAME}

    def fire_times(self, after: datetime) -> Iterator[datetime]:
        """Fire times strictly after ``after`` (aware), ascending, as aware UTC datetimes."""
        start = to_utc(after, "after", self._owner())
        local = start.astimezone(self._tz).replace(tzinfo=None)
        last = start
        for wall in self._rule.xafter(local - _LOOKBACK, inc=False):
            fire = resolve_local(wall, self._tz)
            if fire > last:
                last = fire
                yield fire
