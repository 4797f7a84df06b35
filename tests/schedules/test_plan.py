"""The scheduler's decisions for one schedule (catch-up, lateness, overlap), on a fake clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from fluvial.scheduler import ENDED, idempotency_key, plan
from fluvial.schedules import Cron, Interval, RRule

T = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def outcomes(p) -> list[tuple[str, str]]:
    return [(d.fire_time.strftime("%H:%M"), d.outcome) for d in p.decisions]


def test_nothing_due_decides_nothing() -> None:
    p = plan(Cron("* * * * *"), T + MIN, T)
    assert p.decisions == [] and p.next_fire_time == T + MIN


def test_on_time_fire_creates_and_moves_on() -> None:
    p = plan(Cron("* * * * *"), T, T + timedelta(seconds=0.05))
    assert outcomes(p) == [("09:00", "created")]
    assert p.decisions[0].reason is None
    assert p.next_fire_time == T + MIN


def test_catchup_latest_runs_only_the_newest_missed_time() -> None:
    p = plan(Cron("* * * * *"), T, T + 5 * MIN + timedelta(seconds=10))
    assert outcomes(p) == [("09:00", "skipped"), ("09:05", "created")]
    assert "catchup=latest" in p.decisions[0].reason
    assert "5 missed fire times" in p.decisions[0].reason
    assert p.decisions[1].reason is None  # created: the newest missed time is not late enough
    assert p.next_fire_time == T + 6 * MIN


def test_catchup_all_runs_every_missed_time_up_to_the_bound() -> None:
    schedule = Cron("* * * * *", catchup="all", max_catchup_runs=3)
    p = plan(schedule, T, T + 2 * MIN)
    assert outcomes(p) == [("09:00", "created"), ("09:01", "created"), ("09:02", "created")]
    p = plan(schedule, T, T + 10 * MIN)
    assert outcomes(p) == [("09:00", "skipped"), ("09:08", "created"), ("09:09", "created"),
                           ("09:10", "created")]
    assert "8 missed fire times" in p.decisions[0].reason


def test_catchup_none_runs_only_a_time_seen_on_time() -> None:
    schedule = Cron("*/5 * * * *", catchup="none")
    assert outcomes(plan(schedule, T, T + timedelta(seconds=30))) == [("09:00", "created")]
    p = plan(schedule, T, T + 12 * MIN)
    assert outcomes(p) == [("09:00", "skipped")]
    assert "catchup=none" in p.decisions[0].reason
    assert p.next_fire_time == T + 15 * MIN


def test_a_long_outage_is_one_skipped_line_and_cheap() -> None:
    schedule = Interval(timedelta(seconds=1))
    p = plan(schedule, T, T + timedelta(days=30))
    assert [d.outcome for d in p.decisions] == ["skipped", "created"]
    assert p.decisions[1].fire_time == T + timedelta(days=30)
    assert "earlier missed fire times" in p.decisions[0].reason


def test_max_lateness_cancels_a_run_too_late_to_matter() -> None:
    schedule = Cron("0 * * * *", max_lateness=timedelta(minutes=10))
    p = plan(schedule, T, T + 30 * MIN)
    assert outcomes(p) == [("09:00", "cancelled-late")]
    assert "30m late" in p.decisions[0].reason and "max_lateness 10m" in p.decisions[0].reason
    assert outcomes(plan(schedule, T, T + 5 * MIN)) == [("09:00", "created")]


def test_overlap_skip_skips_while_a_run_is_active() -> None:
    schedule = Cron("* * * * *", overlap="skip", catchup="all")
    p = plan(schedule, T, T + 2 * MIN, active_run="run abc (RUNNING)")
    assert outcomes(p) == [("09:00", "skipped"), ("09:01", "skipped"), ("09:02", "skipped")]
    assert "overlap=skip: run abc (RUNNING) has not ended" == p.decisions[0].reason
    # without an active run the first is created and blocks the others of the same tick
    p = plan(schedule, T, T + 2 * MIN)
    assert outcomes(p) == [("09:00", "created"), ("09:01", "skipped"), ("09:02", "skipped")]


def test_overlap_buffer_one_holds_the_time_until_the_run_ends() -> None:
    schedule = Cron("* * * * *", overlap="buffer_one")
    p = plan(schedule, T, T + timedelta(seconds=5), active_run="run abc (RUNNING)")
    assert p.decisions == [] and p.held == T and p.next_fire_time == T
    # later, still running: the newest due time replaces the held one
    p = plan(schedule, T, T + 3 * MIN, active_run="run abc (RUNNING)")
    assert outcomes(p) == [("09:00", "skipped")]
    assert p.held == T + 3 * MIN and p.next_fire_time == T + 3 * MIN
    # the run ended: the held time runs (late), and the schedule moves on
    p = plan(schedule, T + 3 * MIN, T + 3 * MIN + timedelta(seconds=40))
    assert outcomes(p) == [("09:03", "created")]
    assert p.next_fire_time == T + 4 * MIN


def test_overlap_allow_all_ignores_active_runs() -> None:
    p = plan(Cron("* * * * *"), T, T + timedelta(seconds=1), active_run="run abc (RUNNING)")
    assert outcomes(p) == [("09:00", "created")]


def test_a_finished_schedule_ends() -> None:
    schedule = RRule("DTSTART:20260601T090000Z\nRRULE:FREQ=MINUTELY;COUNT=2")
    p = plan(schedule, T + MIN, T + 5 * MIN)
    assert outcomes(p) == [("09:01", "created")]
    assert p.next_fire_time == ENDED


def test_dst_catchup_on_a_fake_clock() -> None:
    # 01:30 New York on the fall-back day fires once; a scheduler down over the night
    # catches up only the newest time
    schedule = Cron("30 1 * * *", timezone="America/New_York")
    first = schedule.next_fire_time(datetime(2026, 10, 31, 12, tzinfo=UTC))
    assert first == datetime(2026, 11, 1, 5, 30, tzinfo=UTC)
    p = plan(schedule, first, first + timedelta(hours=1, minutes=1))  # 01:31 EST
    assert outcomes(p) == [("05:30", "created")]
    assert p.next_fire_time == datetime(2026, 11, 2, 6, 30, tzinfo=UTC)
    p = plan(schedule, first, datetime(2026, 11, 3, 7, 0, tzinfo=UTC))
    assert [d.outcome for d in p.decisions] == ["skipped", "created"]
    assert p.decisions[1].fire_time == datetime(2026, 11, 3, 6, 30, tzinfo=UTC)


def test_idempotency_key_is_deployment_slug_and_utc_time() -> None:
    fire = datetime(2026, 3, 8, 3, 0, tzinfo=UTC)
    assert idempotency_key("dep", "cron-abc", fire) == "dep:cron-abc:2026-03-08T03:00:00+00:00"
    from zoneinfo import ZoneInfo

    same = fire.astimezone(ZoneInfo("Asia/Tokyo"))
    assert idempotency_key("dep", "cron-abc", same) == idempotency_key("dep", "cron-abc", fire)


@pytest.mark.parametrize("catchup", ["latest", "all", "none"])
def test_decisions_never_repeat_a_fire_time(catchup: str) -> None:
    schedule = Cron("*/7 * * * *", catchup=catchup, max_catchup_runs=4)
    nxt = T
    now = T
    seen: list[datetime] = []
    for step in [1, 3, 30, 2, 45, 7, 1, 120]:
        now += step * MIN
        p = plan(schedule, nxt, now)
        seen += [d.fire_time for d in p.decisions if d.outcome == "created"]
        assert all(d.fire_time <= now for d in p.decisions)
        nxt = p.next_fire_time
        assert nxt > now
    assert seen == sorted(set(seen))


def test_buffer_one_with_catchup_all_runs_missed_times_in_turn() -> None:
    schedule = Cron("* * * * *", overlap="buffer_one", catchup="all")
    p = plan(schedule, T, T + 2 * MIN)
    assert outcomes(p) == [("09:00", "created")] and p.held == T + MIN
    p = plan(schedule, T + MIN, T + 3 * MIN, active_run="run a (RUNNING)")
    assert p.decisions == [] and p.held == T + MIN
    p = plan(schedule, T + MIN, T + 3 * MIN + timedelta(seconds=5))  # run a ended
    assert outcomes(p) == [("09:01", "created")] and p.held == T + 2 * MIN
    assert "late (catchup=all)" in p.decisions[0].reason
