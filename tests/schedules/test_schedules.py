"""fluvial.schedules: the public surface, its errors, slugs and JSON form."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest

from fluvial.schedules import Cron, Interval, RRule, Schedule, schedule_from_dict

T0 = datetime(2026, 1, 5, 12, 0, tzinfo=UTC)  # a Monday


def take(schedule: Schedule, n: int, after: datetime = T0) -> list[datetime]:
    return list(islice(schedule.fire_times(after), n))


def local(times: list[datetime], zone: str) -> list[str]:
    return [t.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z") for t in times]


# -- cron -------------------------------------------------------------------------------


def test_cron_in_a_zone_keeps_local_time_across_dst() -> None:
    schedule = Cron("0 9 * * *", timezone="Europe/London")
    fires = take(schedule, 3, datetime(2026, 3, 28, 10, tzinfo=UTC))
    assert local(fires, "Europe/London") == [
        "2026-03-29 09:00 BST", "2026-03-30 09:00 BST", "2026-03-31 09:00 BST"]
    assert [f.hour for f in fires] == [8, 8, 8]
    assert all(f.tzinfo is UTC for f in fires)


def test_cron_in_the_spring_forward_gap_fires_once_after_it() -> None:
    fires = take(Cron("30 2 * * *", timezone="America/New_York"), 3,
                 datetime(2026, 3, 7, 12, tzinfo=UTC))
    assert local(fires, "America/New_York") == [
        "2026-03-08 03:00 EDT", "2026-03-09 02:30 EDT", "2026-03-10 02:30 EDT"]


def test_cron_on_fall_back_fires_once_unless_hour_is_a_wildcard() -> None:
    after = datetime(2026, 10, 31, 12, tzinfo=UTC)
    once = take(Cron("30 1 * * *", timezone="America/New_York"), 2, after)
    assert local(once, "America/New_York") == ["2026-11-01 01:30 EDT", "2026-11-02 01:30 EST"]
    hourly = take(Cron("30 * * * *", timezone="America/New_York"), 4,
                  datetime(2026, 11, 1, 4, 0, tzinfo=UTC))
    assert local(hourly, "America/New_York") == [
        "2026-11-01 00:30 EDT", "2026-11-01 01:30 EDT", "2026-11-01 01:30 EST",
        "2026-11-01 02:30 EST"]
    assert [b - a for a, b in zip(hourly, hourly[1:], strict=False)] == [timedelta(hours=1)] * 3


def test_cron_day_or_chooses_between_either_and_both_day_fields() -> None:
    either = take(Cron("0 0 13 * FRI"), 3, datetime(2026, 1, 1, tzinfo=UTC))
    assert [f.day for f in either] == [2, 9, 13]  # Fridays, and the 13th
    both = take(Cron("0 0 13 * FRI", day_or=False), 3, datetime(2026, 1, 1, tzinfo=UTC))
    assert [f.date().isoformat() for f in both] == ["2026-02-13", "2026-03-13", "2026-11-13"]


def test_cron_macros_and_spacing_are_normalized() -> None:
    assert Cron("@daily").cron == "0 0 * * *"
    assert Cron("  0   9 * *   mon-fri ").cron == "0 9 * * MON-FRI"
    assert Cron("0 9 * * mon-fri").derived_slug == Cron("0  9 * * MON-FRI").derived_slug


def test_cron_one_value_range_with_step_is_that_value() -> None:
    assert [f.minute for f in take(Cron("35-35/1 * * * *"), 3)] == [35, 35, 35]


@pytest.mark.parametrize(("expr", "message"), [
    ("61 * * * *", "bad minute field '61'"),
    ("0 25 * * *", "bad hour field '25'"),
    ("0 0 * * BLURSDAY", "bad day-of-week field 'BLURSDAY'"),
    ("* * *", "five fields"),
    ("0 0 0 * * *", "five fields"),
    ("@reboot", "not supported"),
    ("", "five fields"),
])
def test_bad_cron_names_the_field(expr: str, message: str) -> None:
    with pytest.raises(ValueError, match="cron") as info:
        Cron(expr)
    assert message in str(info.value)


def test_bad_time_zone_names_the_field() -> None:
    with pytest.raises(ValueError, match="timezone 'Mars/Olympus_Mons' is not a known IANA"):
        Cron("0 9 * * *", timezone="Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="timezone"):
        Interval(60, timezone="Nowhere")
    with pytest.raises(ValueError, match="timezone"):
        RRule("FREQ=DAILY", timezone="Not/AZone")
    with pytest.raises(TypeError, match="timezone must be an IANA zone name"):
        Cron("0 9 * * *", timezone=5)


def test_time_zone_may_be_a_zoneinfo() -> None:
    assert Cron("0 9 * * *", timezone=ZoneInfo("Asia/Tokyo")).timezone == "Asia/Tokyo"
    assert Cron("0 9 * * *", timezone="utc").derived_slug == Cron("0 9 * * *").derived_slug


# -- interval ----------------------------------------------------------------------------


def test_short_interval_is_absolute_across_dst() -> None:
    schedule = Interval(timedelta(hours=1), anchor_date=datetime(2026, 1, 1),
                        timezone="America/New_York")
    fires = take(schedule, 4, datetime(2026, 3, 8, 5, 30, tzinfo=UTC))
    assert local(fires, "America/New_York") == [
        "2026-03-08 01:00 EST", "2026-03-08 03:00 EDT", "2026-03-08 04:00 EDT",
        "2026-03-08 05:00 EDT"]


def test_daily_interval_keeps_the_wall_clock_time() -> None:
    schedule = Interval(timedelta(days=1), anchor_date=datetime(2026, 1, 1, 9, 0),
                        timezone="Europe/London")
    assert schedule.keeps_wall_clock
    fires = take(schedule, 3, datetime(2026, 3, 28, 10, tzinfo=UTC))
    assert local(fires, "Europe/London") == [
        "2026-03-29 09:00 BST", "2026-03-30 09:00 BST", "2026-03-31 09:00 BST"]
    assert fires[1] - fires[0] == timedelta(days=1)


def test_interval_accepts_seconds_and_an_aware_anchor() -> None:
    anchor = datetime(2026, 1, 1, 9, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    schedule = Interval(90, anchor_date=anchor)
    assert schedule.interval == timedelta(seconds=90)
    assert schedule.timezone == "Asia/Tokyo"
    assert take(schedule, 2, anchor) == [anchor + timedelta(seconds=90),
                                         anchor + timedelta(seconds=180)]


def test_default_anchor_is_fixed() -> None:
    schedule = Interval(timedelta(minutes=7))
    fires = take(schedule, 5)
    epoch = datetime(2020, 1, 1, tzinfo=UTC)
    assert all((f - epoch) % timedelta(minutes=7) == timedelta(0) for f in fires)


@pytest.mark.parametrize(("interval", "error", "message"), [
    (0, ValueError, "interval must be at least 1 second"),
    (-5, ValueError, "interval must be at least 1 second"),
    (timedelta(0), ValueError, "interval must be at least 1 second"),
    (0.5, ValueError, "interval must be at least 1 second, got 0.5 seconds"),
    (float("nan"), ValueError, "finite"),
    ("hourly", TypeError, "interval must be a timedelta or a number of seconds"),
    (True, TypeError, "interval must be a timedelta"),
])
def test_bad_interval_names_the_field(interval: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Interval(interval)  # type: ignore[arg-type]


def test_bad_anchor_names_the_field() -> None:
    with pytest.raises(ValueError, match="anchor_date 'yesterday' is not an ISO 8601"):
        Interval(60, anchor_date="yesterday")


# -- rrule -------------------------------------------------------------------------------


def test_rrule_in_a_zone() -> None:
    schedule = RRule("FREQ=WEEKLY;BYDAY=MO,WE;BYHOUR=8;BYMINUTE=0", timezone="America/New_York")
    fires = take(schedule, 3, datetime(2026, 3, 6, tzinfo=UTC))
    assert local(fires, "America/New_York") == [
        "2026-03-09 08:00 EDT", "2026-03-11 08:00 EDT", "2026-03-16 08:00 EDT"]


def test_rrule_takes_its_zone_from_dtstart() -> None:
    schedule = RRule("DTSTART;TZID=Europe/Paris:20260101T090000\nRRULE:FREQ=DAILY;COUNT=400")
    assert schedule.timezone == "Europe/Paris"
    fires = take(schedule, 2, datetime(2026, 3, 28, 12, tzinfo=UTC))
    assert local(fires, "Europe/Paris") == ["2026-03-29 09:00 CEST", "2026-03-30 09:00 CEST"]
    with pytest.raises(ValueError, match="disagrees with the rule's DTSTART zone"):
        RRule("DTSTART;TZID=Europe/Paris:20260101T090000\nRRULE:FREQ=DAILY",
              timezone="Asia/Tokyo")


def test_finite_rrule_ends() -> None:
    schedule = RRule("DTSTART:20260101T000000\nRRULE:FREQ=DAILY;COUNT=3")
    assert len(list(schedule.fire_times(datetime(2025, 1, 1, tzinfo=UTC)))) == 3
    assert schedule.next_fire_time(datetime(2027, 1, 1, tzinfo=UTC)) is None


def test_bad_rrule_names_the_field() -> None:
    with pytest.raises(ValueError, match="rrule is not a valid RFC 5545 recurrence rule"):
        RRule("FREQ=SOMETIMES")
    with pytest.raises(TypeError, match="rrule must be a non-empty string"):
        RRule("")


# -- shared: policies, slugs, JSON -------------------------------------------------------


def test_fire_times_needs_an_aware_after() -> None:
    with pytest.raises(ValueError, match="after must be timezone-aware"):
        next(Cron("* * * * *").fire_times(datetime(2026, 1, 1)))


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"catchup": "sometimes"}, "catchup must be one of 'latest', 'all', 'none'"),
    ({"overlap": "queue"}, "overlap must be one of 'skip', 'buffer_one', 'allow_all'"),
    ({"max_catchup_runs": 0}, "max_catchup_runs must be an integer of at least 1"),
    ({"max_lateness": -1}, "max_lateness must be positive"),
    ({"max_lateness": "1h"}, "max_lateness must be a timedelta"),
    ({"slug": "has spaces"}, "slug must be"),
    ({"parameters": {"when": object()}}, "parameters must be JSON-serializable"),
    ({"active": "yes"}, "active must be True or False"),
])
def test_bad_policy_names_the_field(kwargs: dict, message: str) -> None:
    with pytest.raises((ValueError, TypeError), match=message):
        Cron("0 9 * * *", **kwargs)


def test_derived_slug_is_stable_and_never_random() -> None:
    # pinned: a change here re-slugs every stored schedule (and could fire a time twice)
    assert Cron("0 9 * * *", timezone="Europe/London").derived_slug == "cron-b679b1fabf05"
    assert Cron("0 9 * * *").derived_slug == Cron("0 9 * * *").derived_slug
    assert Cron("0 9 * * *").derived_slug != Cron("0 10 * * *").derived_slug
    assert Cron("0 9 * * *").derived_slug != Cron("0 9 * * *", parameters={"n": 1}).derived_slug
    # policies and the active flag are not part of it: changing them keeps the schedule
    assert Cron("0 9 * * *").derived_slug == Cron("0 9 * * *", catchup="all",
                                                  active=False).derived_slug
    assert Cron("0 9 * * *", slug="morning").derived_slug == "morning"
    code = ("from fluvial.schedules import Cron, Interval, RRule;"
            "print(Cron('0 9 * * *', timezone='Europe/London').derived_slug,"
            "Interval(60).derived_slug, RRule('FREQ=DAILY').derived_slug)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={"PYTHONHASHSEED": "random", "PATH": ""}).stdout.split()
    assert out == [Cron("0 9 * * *", timezone="Europe/London").derived_slug,
                   Interval(60).derived_slug, RRule("FREQ=DAILY").derived_slug]


@pytest.mark.parametrize("schedule", [
    Cron("0 9 * * MON", timezone="Europe/London", day_or=False, parameters={"n": 2},
         slug="weekly", catchup="all", max_catchup_runs=5, overlap="skip",
         max_lateness=timedelta(minutes=10)),
    Interval(timedelta(hours=36), anchor_date=datetime(2026, 1, 1, 6, 30),
             timezone="Australia/Lord_Howe", active=False, overlap="buffer_one"),
    RRule("FREQ=MONTHLY;BYMONTHDAY=-1;BYHOUR=23", timezone="America/Sao_Paulo",
          catchup="none", max_lateness=30),
])
def test_to_dict_round_trips_through_json(schedule: Schedule) -> None:
    import json

    data = json.loads(json.dumps(schedule.to_dict()))
    again = schedule_from_dict(data)
    assert again == schedule
    assert again.derived_slug == schedule.derived_slug
    assert take(again, 5) == take(schedule, 5)
    assert repr(again) == repr(schedule)


def test_schedule_from_dict_refuses_unknown_data() -> None:
    with pytest.raises(ValueError, match="unknown kind 'weekly'"):
        schedule_from_dict({"kind": "weekly"})
    with pytest.raises(TypeError, match="schedule data for a cron schedule"):
        schedule_from_dict({"kind": "cron", "cron": "* * * * *", "colour": "red"})


def test_import_fluvial_does_not_import_schedule_libraries() -> None:
    code = ("import sys, fluvial;"
            "print(sorted(m for m in ('cronsim', 'dateutil', 'fluvial.schedules', 'zoneinfo')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert "cronsim" not in out and "dateutil" not in out and "fluvial.schedules" not in out
