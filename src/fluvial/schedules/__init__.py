"""fluvial.schedules: when a deployment runs by itself (Prefect 3's ``prefect.schedules``).

    Cron("0 9 * * MON-FRI", timezone="Europe/London")      cron, through cronsim
    Interval(timedelta(hours=1), anchor_date=..., timezone=...)
    RRule("FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=8", timezone="America/New_York")

Every schedule has ``active``, ``parameters`` and ``slug``, and per-schedule policies
for the scheduler: ``catchup`` ("latest" | "all" | "none") with ``max_catchup_runs``,
``overlap`` ("skip" | "buffer_one" | "allow_all") and ``max_lateness``. A schedule is
pure: ``fire_times(after)`` yields aware UTC datetimes strictly after ``after``;
``derived_slug`` is the slug, or a stable digest of the normalized schedule (so a
redeploy of an unchanged schedule is the same schedule); ``to_dict()`` and
:func:`schedule_from_dict` are its JSON form in the store. The DST rules are in each
class's module docstring and in docs/behaviour.md.

Modules: ``_base`` (policies, slug, JSON), ``_zones`` (time zones, wall clock),
``_cron``, ``_interval``, ``_rrule``. cronsim and dateutil are imported when a
schedule of their kind is made; ``import fluvial`` does not import this package.
"""

from __future__ import annotations

from fluvial.schedules._base import (
    CATCHUP_POLICIES,
    DEFAULT_MAX_CATCHUP_RUNS,
    OVERLAP_POLICIES,
    Schedule,
    schedule_from_dict,
)
from fluvial.schedules._cron import Cron
from fluvial.schedules._interval import Interval
from fluvial.schedules._rrule import RRule

__all__ = [
    "CATCHUP_POLICIES",
    "DEFAULT_MAX_CATCHUP_RUNS",
    "OVERLAP_POLICIES",
    "Cron",
    "Interval",
    "RRule",
    "Schedule",
    "schedule_from_dict",
]
