"""One scheduler tick against the real record (SQLite and PostgreSQL), on a fake clock."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from scheduler_helpers import AddDeployment

from fluvial.scheduler import ENDED, Scheduler, idempotency_key, list_ticks, run_scheduler_once
from fluvial.schedules import Cron, Interval

T = datetime(2026, 6, 1, 9, 0, tzinfo=UTC).timestamp()


def runs(conn: Any, dep_id: str) -> list[tuple]:
    return conn.execute(
        "SELECT scheduled_start_time, state_type, idempotency_key, parameters, tags, work_pool, "
        "id FROM flow_runs WHERE deployment_id = ? ORDER BY scheduled_start_time",
        (dep_id,)).fetchall()


def next_fire(conn: Any, dep_id: str) -> float:
    return conn.execute("SELECT next_fire_time FROM deployment_schedules WHERE deployment_id = ?",
                        (dep_id,)).fetchone()[0]


def outcomes(conn: Any, dep_id: str) -> list[tuple[float, str]]:
    return [(t.fire_time, t.outcome) for t in reversed(list_ticks(conn, dep_id))]


def test_a_due_fire_time_becomes_one_scheduled_run(conn: Any,
                                                   add_deployment: AddDeployment) -> None:
    schedule = Cron("* * * * *", parameters={"n": 2})
    dep = add_deployment([schedule], parameters={"n": 1, "m": 5}, tags=["nightly"])
    first = run_scheduler_once(conn, T - 30)  # a new schedule starts at its next fire time
    assert first.created == [] and next_fire(conn, dep) == T
    assert run_scheduler_once(conn, T - 1).created == []
    summary = run_scheduler_once(conn, T + 0.05)
    assert len(summary.created) == 1
    [(start, state, key, params, tags, pool, run_id)] = runs(conn, dep)
    assert (start, state, pool) == (T, "SCHEDULED", "default")
    assert key == idempotency_key(dep, schedule.derived_slug, datetime.fromtimestamp(T, UTC))
    assert json.loads(params) == {"n": 2, "m": 5}
    assert json.loads(tags) == ["nightly"]
    assert run_id == summary.created[0]
    history = conn.execute("SELECT type FROM state_history WHERE run_id = ?", (run_id,)).fetchall()
    assert history == [("SCHEDULED",)]
    assert next_fire(conn, dep) == T + 60
    last = conn.execute("SELECT last_fired_time FROM deployment_schedules").fetchone()[0]
    assert last == T
    [tick] = list_ticks(conn, dep)
    assert (tick.fire_time, tick.outcome, tick.flow_run_id, tick.decided_at) == (
        T, "created", run_id, T + 0.05)
    # the same moment again: nothing is due any more
    assert run_scheduler_once(conn, T + 0.05).created == []
    assert len(runs(conn, dep)) == 1


def test_a_reset_schedule_cannot_fire_a_time_twice(conn: Any,
                                                   add_deployment: AddDeployment) -> None:
    dep = add_deployment([Cron("* * * * *")], next_fire_time=T)
    assert len(run_scheduler_once(conn, T + 1).created) == 1
    # a redeploy (or a bug) puts the next fire time back on a time that already fired
    conn.execute("UPDATE deployment_schedules SET next_fire_time = ?", (T,))
    summary = run_scheduler_once(conn, T + 2)
    assert summary.created == [] and summary.duplicates == 1
    assert len(runs(conn, dep)) == 1
    assert outcomes(conn, dep) == [(T, "created"), (T, "duplicate")]
    assert "exists already" in list_ticks(conn, dep)[0].reason
    assert list_ticks(conn, dep)[0].flow_run_id == runs(conn, dep)[0][6]


def test_paused_deployments_and_inactive_schedules_are_not_ticked(
        conn: Any, add_deployment: AddDeployment) -> None:
    paused = add_deployment([Cron("* * * * *")], paused=True, next_fire_time=T)
    inactive = add_deployment([Cron("* * * * *", active=False)], next_fire_time=T)
    summary = run_scheduler_once(conn, T + 1)
    assert summary.due == 0 and summary.created == []
    assert runs(conn, paused) == [] and runs(conn, inactive) == []
    assert list_ticks(conn, paused) == []


def test_catch_up_policies_after_an_outage(conn: Any, add_deployment: AddDeployment) -> None:
    latest = add_deployment([Cron("* * * * *")], next_fire_time=T)
    every = add_deployment([Cron("* * * * *", catchup="all", max_catchup_runs=3)],
                           next_fire_time=T)
    none = add_deployment([Cron("*/5 * * * *", catchup="none")], next_fire_time=T)
    run_scheduler_once(conn, T + 10 * 60 + 5)  # down for ten minutes
    assert [r[0] for r in runs(conn, latest)] == [T + 600]
    assert [r[0] for r in runs(conn, every)] == [T + 480, T + 540, T + 600]
    assert [r[0] for r in runs(conn, none)] == [T + 600]  # 5 s late: on time
    assert outcomes(conn, latest) == [(T, "skipped"), (T + 600, "created")]
    assert "10 missed fire times" in list_ticks(conn, latest)[1].reason
    assert [o for _, o in outcomes(conn, every)] == ["skipped", "created", "created", "created"]
    run_scheduler_once(conn, T + 20 * 60 + 90)  # down again; none's newest is 90 s late
    assert [r[0] for r in runs(conn, none)] == [T + 600]
    assert outcomes(conn, none)[-1] == (T + 900, "skipped")
    assert "catchup=none" in list_ticks(conn, none)[0].reason
    assert next_fire(conn, latest) == next_fire(conn, every) == T + 22 * 60
    assert next_fire(conn, none) == T + 25 * 60


def test_max_lateness_records_a_cancelled_tick(conn: Any, add_deployment: AddDeployment) -> None:
    dep = add_deployment([Cron("0 * * * *", max_lateness=timedelta(minutes=5))],
                         next_fire_time=T)
    summary = run_scheduler_once(conn, T + 600)
    assert summary.cancelled_late == 1 and runs(conn, dep) == []
    [tick] = list_ticks(conn, dep)
    assert tick.outcome == "cancelled-late" and tick.reason == "10m late, more than max_lateness 5m"


def _set_state(conn: Any, run_id: str, state: str) -> None:
    conn.execute("UPDATE flow_runs SET state_type = ? WHERE id = ?", (state, run_id))


def test_overlap_skip_and_buffer_one_look_at_the_deployments_runs(
        conn: Any, add_deployment: AddDeployment) -> None:
    skip = add_deployment([Cron("* * * * *", overlap="skip")], next_fire_time=T)
    buffer = add_deployment([Cron("* * * * *", overlap="buffer_one")], next_fire_time=T)
    run_scheduler_once(conn, T + 1)
    skip_run, buffer_run = runs(conn, skip)[0][6], runs(conn, buffer)[0][6]
    _set_state(conn, skip_run, "RUNNING")
    _set_state(conn, buffer_run, "RUNNING")
    summary = run_scheduler_once(conn, T + 61)
    assert summary.skipped == 1 and summary.held == 1
    assert outcomes(conn, skip)[-1] == (T + 60, "skipped")
    assert f"run {skip_run} (RUNNING) has not ended" in list_ticks(conn, skip)[0].reason
    assert next_fire(conn, buffer) == T + 60  # held
    assert run_scheduler_once(conn, T + 65).held == 1  # still running: still held
    _set_state(conn, buffer_run, "COMPLETED")
    _set_state(conn, skip_run, "COMPLETED")
    run_scheduler_once(conn, T + 70)
    assert [r[0] for r in runs(conn, buffer)] == [T, T + 60]  # the buffered one, late
    assert next_fire(conn, buffer) == T + 120
    run_scheduler_once(conn, T + 121)
    assert [r[0] for r in runs(conn, skip)] == [T, T + 120]


def test_an_unreadable_schedule_is_reported_once_and_left_alone(
        conn: Any, add_deployment: AddDeployment) -> None:
    dep = add_deployment([Cron("* * * * *")], next_fire_time=T)
    conn.execute("UPDATE deployment_schedules SET schedule = ?",
                 (json.dumps({"kind": "sundial"}),))
    run_scheduler_once(conn, T + 1)
    run_scheduler_once(conn, T + 100)
    [tick] = list_ticks(conn, dep)
    assert tick.outcome == "skipped" and "cannot be read" in tick.reason
    assert "unknown kind 'sundial'" in tick.reason
    assert next_fire(conn, dep) == ENDED.timestamp()


def test_dst_days_fire_once_per_day_on_a_fake_clock(conn: Any,
                                                    add_deployment: AddDeployment) -> None:
    fall = add_deployment([Cron("30 1 * * *", timezone="America/New_York")])
    spring = add_deployment([Cron("30 1 * * *", timezone="Europe/London")])
    hourly = add_deployment([Cron("30 * * * *", timezone="Australia/Lord_Howe")])
    clock = datetime(2026, 10, 31, 12, tzinfo=UTC).timestamp()
    scheduler = Scheduler(conn, clock=lambda: clock)
    for _ in range(3 * 24 * 6):  # three days, a tick every 10 minutes
        scheduler.run_once()
        clock += 600
    ny = [datetime.fromtimestamp(r[0], UTC).isoformat() for r in runs(conn, fall)]
    assert ny == ["2026-11-01T05:30:00+00:00", "2026-11-02T06:30:00+00:00",
                  "2026-11-03T06:30:00+00:00"]
    assert len(runs(conn, hourly)) == 72  # no fall-back or spring-forward here in November
    clock = datetime(2027, 3, 27, 12, tzinfo=UTC).timestamp()
    conn.execute("UPDATE deployment_schedules SET next_fire_time = NULL")
    for _ in range(2 * 24 * 6):
        scheduler.run_once()
        clock += 600
    london = [datetime.fromtimestamp(r[0], UTC).isoformat() for r in runs(conn, spring)]
    # 01:30 does not exist on 28 March 2027 in London (01:00 GMT becomes 02:00 BST): it
    # fires once, at the first minute after the gap (02:00 BST, 01:00 UTC)
    assert london[-2:] == ["2027-03-28T01:00:00+00:00", "2027-03-29T00:30:00+00:00"]
    assert len(london) == 3 + 2


def test_scheduler_sleeps_until_the_next_fire_time(conn: Any,
                                                   add_deployment: AddDeployment) -> None:
    add_deployment([Interval(timedelta(seconds=30))], next_fire_time=T + 30)
    add_deployment([Cron("0 0 1 1 *")], next_fire_time=T + 86400)
    assert Scheduler(conn, clock=lambda: T + 23, poll_interval=20).seconds_until_due() == 7
    assert Scheduler(conn, clock=lambda: T + 31, poll_interval=20).seconds_until_due() == 20
    slept: list[float] = []
    clock = T + 23
    ticking = Scheduler(conn, clock=lambda: clock, poll_interval=20)

    def sleep(seconds: float) -> None:
        nonlocal clock
        slept.append(seconds)
        clock += seconds

    ticking.run(sleep=sleep, max_ticks=4)
    # to the first fire time, not a poll interval; then the poll interval caps the wait
    assert slept == [7, 20, 10, 20]
    starts = conn.execute("SELECT scheduled_start_time, created FROM flow_runs "
                          "ORDER BY scheduled_start_time").fetchall()
    assert starts == [(T + 30, T + 30), (T + 60, T + 60)]  # each created at its fire time


def test_resuming_starts_the_schedule_again_from_now(conn: Any,
                                                     add_deployment: AddDeployment) -> None:
    from fluvial.deployments._records import set_paused, set_schedule_active

    dep = add_deployment([Cron("* * * * *", slug="minutely")], next_fire_time=T)
    set_paused(dep, True, conn)
    assert run_scheduler_once(conn, T + 3600).due == 0  # paused for an hour
    set_paused(dep, False, conn)
    run_scheduler_once(conn, T + 3600 + 10)  # no catch-up of the paused hour
    assert runs(conn, dep) == [] and list_ticks(conn, dep) == []
    assert next_fire(conn, dep) == T + 3660
    run_scheduler_once(conn, T + 3660.5)
    assert [r[0] for r in runs(conn, dep)] == [T + 3660]
    set_schedule_active(dep, "minutely", False, conn)
    set_schedule_active(dep, "minutely", True, conn)
    run_scheduler_once(conn, T + 7200 + 5)
    assert next_fire(conn, dep) == T + 7260 and len(runs(conn, dep)) == 1


def test_ticks_older_than_thirty_days_are_pruned(conn: Any,
                                                 add_deployment: AddDeployment) -> None:
    dep = add_deployment([Cron("0 9 * * *")], next_fire_time=T)
    for day in range(40):
        run_scheduler_once(conn, T + day * 86400 + 1)
    kept = [t.fire_time for t in list_ticks(conn, dep, limit=100)]
    assert len(runs(conn, dep)) == 40  # runs stay; only their tick rows go
    assert min(kept) >= T + (39 - 30) * 86400 and len(kept) in (30, 31)
