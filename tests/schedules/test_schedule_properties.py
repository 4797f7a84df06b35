"""Property tests: fire times of Cron, Interval and RRule across DST rules.

Each cron schedule is checked against a brute-force oracle that walks every real
minute of a window and applies Debian cron's rules in local time: a matching wall
time fires; for a fixed-time schedule (minute and hour fields not starting with
'*') a repeated time fires only in its first pass and a spring-forward gap holding
a matching time fires once, at the first minute after it.
The zones cover a 1-hour DST in both hemispheres, Lord Howe's 30-minute DST, Sao
Paulo's midnight changes (2015-2019) and Tokyo (no DST).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import islice
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fluvial.schedules import Cron, Interval, RRule

ZONES = ["America/New_York", "Europe/London", "Australia/Lord_Howe", "America/Sao_Paulo",
         "Asia/Tokyo"]
MINUTE = timedelta(minutes=1)
PROPERTY = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def transitions(zone: str, start_year: int = 2015, end_year: int = 2031) -> list[datetime]:
    """Instants (UTC) at which ``zone``'s UTC offset changes, found day by day, then minute."""
    tz = ZoneInfo(zone)
    found = []
    t = datetime(start_year, 1, 1, tzinfo=UTC)
    end = datetime(end_year, 1, 1, tzinfo=UTC)
    step = timedelta(days=1)
    while t < end:
        if t.astimezone(tz).utcoffset() != (t + step).astimezone(tz).utcoffset():
            m = t
            while m.astimezone(tz).utcoffset() == (m + MINUTE).astimezone(tz).utcoffset():
                m += MINUTE
            found.append(m + MINUTE)
        t += step
    return found


_TRANSITIONS = {zone: transitions(zone) for zone in ZONES}


@st.composite
def starts(draw: st.DrawFn, zone: str) -> datetime:
    """A start instant, usually within a day before a DST change of ``zone``."""
    near = _TRANSITIONS[zone]
    if near and draw(st.booleans()):
        base = draw(st.sampled_from(near))
        return base - timedelta(minutes=draw(st.integers(0, 36 * 60)),
                                seconds=draw(st.integers(0, 59)))
    return draw(st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2030, 12, 1),
                             timezones=st.just(UTC)))


def field(draw: st.DrawFn, low: int, high: int, star_weight: int) -> str:
    kind = draw(st.sampled_from(["star"] * star_weight + ["value", "list", "range", "step",
                                                           "range_step"]))
    if kind == "star":
        return "*"
    if kind == "value":
        return str(draw(st.integers(low, high)))
    if kind == "list":
        values = draw(st.lists(st.integers(low, high), min_size=2, max_size=4, unique=True))
        return ",".join(map(str, values))
    if kind == "step":
        return f"*/{draw(st.integers(2, max(2, (high - low) // 2)))}"
    a = draw(st.integers(low, high))
    b = draw(st.integers(a, high))
    if kind == "range":
        return f"{a}-{b}"
    return f"{a}-{b}/{draw(st.integers(1, 5))}"


@st.composite
def crons(draw: st.DrawFn) -> str:
    minute = field(draw, 0, 59, star_weight=1)
    hour = field(draw, 0, 23, star_weight=2)
    dow = draw(st.sampled_from(["*", "*", "*", "1-5", "0,6", "3"]))
    return f"{minute} {hour} * * {dow}"


def _matches(spec: str, value: int) -> bool:
    for part in spec.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/")
            step = int(step_text)
        if part == "*":
            low, high = 0, 59
        elif "-" in part:
            low, high = map(int, part.split("-"))
        else:
            low = high = int(part)
            if step == 1:
                if value == low:
                    return True
                continue
        if low <= value <= high and (value - low) % step == 0:
            return True
    return False


def wall_matches(expr: str, wall: datetime) -> bool:
    minute, hour, _dom, _month, dow = expr.split()
    cron_dow = (wall.weekday() + 1) % 7  # cron: Sunday is 0
    return _matches(minute, wall.minute) and _matches(hour, wall.hour) and _matches(dow, cron_dow)


def oracle(expr: str, zone: str, after: datetime, until: datetime) -> list[datetime]:
    """Debian cron's fire times in (after, until], minute by minute (``after`` whole minutes)."""
    tz = ZoneInfo(zone)
    fixed_time = not expr.split()[0].startswith("*") and not expr.split()[1].startswith("*")
    fires = []
    m = after.replace(second=0, microsecond=0) + MINUTE
    while m <= until:
        local = m.astimezone(tz)
        before = (m - MINUTE).astimezone(tz)
        fire = wall_matches(expr, local.replace(tzinfo=None))
        if fire and fixed_time and local.fold == 1:
            fire = False  # the second pass of a repeated time
        if fixed_time and local.utcoffset() > before.utcoffset():  # first minute after a gap
            wall = before.replace(tzinfo=None) + MINUTE
            while not fire and wall < local.replace(tzinfo=None):
                fire = wall_matches(expr, wall)
                wall += MINUTE
        if fire:
            fires.append(m)
        m += MINUTE
    return fires


@pytest.mark.parametrize("zone", ZONES)
@PROPERTY
@given(data=st.data())
def test_cron_fires_exactly_when_debian_cron_would(zone: str, data: st.DataObject) -> None:
    expr = data.draw(crons(), label="cron")
    after = data.draw(starts(zone), label="after").replace(second=0, microsecond=0)
    until = after + timedelta(hours=30)
    schedule = Cron(expr, timezone=zone)
    got = []
    for fire in schedule.fire_times(after):
        if fire > until:
            break
        got.append(fire)
    assert got == oracle(expr, zone, after, until)


@pytest.mark.parametrize("zone", ZONES)
@PROPERTY
@given(data=st.data())
def test_cron_fire_times_strictly_increase_and_follow_after(zone: str,
                                                           data: st.DataObject) -> None:
    expr = data.draw(crons(), label="cron")
    after = data.draw(starts(zone), label="after")  # with seconds and microseconds
    fires = list(islice(Cron(expr, timezone=zone).fire_times(after), 40))
    assert fires, expr
    assert all(f.tzinfo is UTC for f in fires)
    assert fires[0] > after
    assert all(a < b for a, b in zip(fires, fires[1:], strict=False))
    # restarting from any fire time continues the same sequence (what the scheduler does)
    i = data.draw(st.integers(0, len(fires) - 2), label="restart")
    again = list(islice(Cron(expr, timezone=zone).fire_times(fires[i]), len(fires) - i - 1))
    assert again == fires[i + 1:]


@pytest.mark.parametrize("zone", ZONES)
@PROPERTY
@given(data=st.data())
def test_daily_fixed_time_fires_once_per_local_day(zone: str, data: st.DataObject) -> None:
    hour = data.draw(st.integers(0, 23), label="hour")
    minute = data.draw(st.sampled_from([0, 15, 30, 45]), label="minute")
    after = data.draw(starts(zone), label="after")
    tz = ZoneInfo(zone)
    fires = list(islice(Cron(f"{minute} {hour} * * *", timezone=zone).fire_times(after), 10))
    days = [f.astimezone(tz).date() for f in fires]
    assert len(set(days)) == len(days)  # no duplicates on fall-back days
    assert all((b - a).days == 1 for a, b in zip(days, days[1:], strict=False))  # no day skipped
    for fire in fires:
        local = fire.astimezone(tz)
        if (local.hour, local.minute) != (hour, minute):
            # only a wall time in the spring-forward gap moves, to the gap's end
            assert local.utcoffset() > (fire - MINUTE).astimezone(tz).utcoffset()


@pytest.mark.parametrize("zone", ZONES)
@PROPERTY
@given(data=st.data())
def test_short_intervals_are_absolute(zone: str, data: st.DataObject) -> None:
    seconds = data.draw(st.integers(1, 24 * 3600 - 1), label="seconds")
    anchor = data.draw(st.datetimes(min_value=datetime(2015, 1, 1),
                                    max_value=datetime(2030, 1, 1)), label="anchor")
    after = data.draw(starts(zone), label="after")
    schedule = Interval(seconds, anchor_date=anchor, timezone=zone)
    fires = list(islice(schedule.fire_times(after), 30))
    assert fires[0] > after >= fires[0] - timedelta(seconds=seconds)
    assert all(b - a == timedelta(seconds=seconds) for a, b in zip(fires, fires[1:], strict=False))
    assert all((f - schedule.anchor_date) % timedelta(seconds=seconds) == timedelta(0)
               for f in fires)


@pytest.mark.parametrize("zone", ZONES)
@PROPERTY
@given(data=st.data())
def test_long_intervals_keep_the_wall_clock(zone: str, data: st.DataObject) -> None:
    days = data.draw(st.integers(1, 9), label="days")
    extra = data.draw(st.sampled_from([0, 0, 3600, 5400]), label="extra seconds")
    interval = timedelta(days=days, seconds=extra)
    anchor = data.draw(st.datetimes(min_value=datetime(2015, 1, 1),
                                    max_value=datetime(2030, 1, 1)), label="anchor")
    anchor = anchor.replace(second=0, microsecond=0)
    after = data.draw(starts(zone), label="after")
    tz = ZoneInfo(zone)
    schedule = Interval(interval, anchor_date=anchor, timezone=zone)
    fires = list(islice(schedule.fire_times(after), 20))
    assert fires[0] > after
    assert all(a < b for a, b in zip(fires, fires[1:], strict=False))
    for fire in fires:
        wall = fire.astimezone(tz).replace(tzinfo=None)
        k, rest = divmod(wall - anchor, interval)
        if rest:  # moved out of a spring-forward gap, to its end
            intended = anchor + k * interval
            assert fire.astimezone(tz).utcoffset() > (fire - MINUTE).astimezone(tz).utcoffset()
            assert timedelta(0) < wall - intended <= timedelta(hours=1)
    # real spacing differs from the interval by at most one DST shift
    for a, b in zip(fires, fires[1:], strict=False):
        assert abs((b - a) - interval) <= timedelta(hours=1)


@pytest.mark.parametrize("zone", ZONES)
@PROPERTY
@given(data=st.data())
def test_rrule_fires_at_its_wall_clock_times(zone: str, data: st.DataObject) -> None:
    hours = data.draw(st.lists(st.integers(0, 23), min_size=1, max_size=3, unique=True),
                      label="hours")
    minute = data.draw(st.sampled_from([0, 10, 30, 45]), label="minute")
    rule = f"FREQ=DAILY;BYHOUR={','.join(map(str, sorted(hours)))};BYMINUTE={minute}"
    after = data.draw(starts(zone), label="after")
    tz = ZoneInfo(zone)
    fires = list(islice(RRule(rule, timezone=zone).fire_times(after), 20))
    assert fires[0] > after
    assert all(a < b for a, b in zip(fires, fires[1:], strict=False))
    for fire in fires:
        local = fire.astimezone(tz)
        if not (local.hour in hours and local.minute == minute):
            assert local.utcoffset() > (fire - MINUTE).astimezone(tz).utcoffset()
    walls = [f.astimezone(tz).replace(tzinfo=None) for f in fires]
    assert len(set(walls)) == len(walls)  # a repeated wall time fires once
