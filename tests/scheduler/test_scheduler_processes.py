"""Exactly once with competing scheduler processes (real subprocesses), SQLite and PostgreSQL.

Three processes tick along the same fake timeline at full speed against one record:
every fire time of every schedule becomes exactly one run, each decided (one tick
row) by exactly one process, and the work is really shared between them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from pathlib import Path
from typing import Any

from scheduler_helpers import AddDeployment, env_for_subprocess

from fluvial.schedules import Cron, Interval, Schedule

HERE = Path(__file__).parent
T0 = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)
SPAN = 240  # seconds of fake time


def test_competing_scheduler_processes_fire_each_time_once(
        conn: Any, add_deployment: AddDeployment, tmp_path: Path) -> None:
    schedules: dict[str, Schedule] = {}
    for i in range(24):
        if i % 4 == 3:
            schedule: Schedule = Cron("* * * * *", catchup="all", max_catchup_runs=10_000)
        else:
            schedule = Interval(timedelta(seconds=1 + i % 3), catchup="all",
                                max_catchup_runs=10_000)
        first = schedule.next_fire_time(T0)
        assert first is not None
        schedules[add_deployment([schedule], next_fire_time=first.timestamp())] = schedule
    go = tmp_path / "go"
    procs = [subprocess.Popen(
        [sys.executable, str(HERE / "fake_clock_ticks.py"), str(go), str(T0.timestamp()),
         str(T0.timestamp() + SPAN), str(0.5 + 0.1 * n)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for_subprocess())
        for n in range(3)]
    go.touch()
    reports = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        reports.append(json.loads(out.strip().splitlines()[-1]))
    rows = conn.execute("SELECT deployment_id, scheduled_start_time, idempotency_key "
                        "FROM flow_runs").fetchall()
    per_time = Counter((dep, start) for dep, start, _ in rows)
    assert max(per_time.values()) == 1  # no fire time has two runs
    end = T0 + timedelta(seconds=SPAN)
    for dep_id, schedule in schedules.items():
        expected = [t.timestamp() for t in takewhile(lambda t: t <= end,
                                                     schedule.fire_times(T0))]
        got = sorted(start for dep, start, _ in rows if dep == dep_id)
        assert got == expected, schedule  # none missed, none twice
    ticks = conn.execute("SELECT deployment_id, fire_time, outcome FROM schedule_ticks").fetchall()
    assert Counter(o for _, _, o in ticks) == {"created": len(rows)}  # each decided once
    assert sum(r["created"] for r in reports) == len(rows)
    assert sum(1 for r in reports if r["created"]) >= 2, reports  # they really competed


def test_scheduler_benchmark_smoke() -> None:
    """The scheduler benchmark group runs and reports its rows (tiny sizes; no targets)."""
    code = ("import json; from benchmarks.bench_scheduler import crowded_minute;"
            "print(json.dumps(crowded_minute(50, lead=2, linger=2)))")
    root = HERE.parent.parent
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True, text=True,
                         timeout=120, env=env_for_subprocess())
    assert out.returncode == 0, out.stderr
    [result] = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["runs"] == result["expected"] == 50 and result["duplicates"] == 0


def test_standalone_scheduler_once(conn: Any, add_deployment: AddDeployment) -> None:
    """``python -m fluvial.scheduler --once --list-runs``: one tick on the wall clock."""
    import time

    dep = add_deployment([Interval(timedelta(hours=1))], next_fire_time=None)
    first = subprocess.run([sys.executable, "-m", "fluvial.scheduler", "--once"],
                           capture_output=True, text=True, timeout=60, env=env_for_subprocess())
    assert first.returncode == 0, first.stderr
    nxt = conn.execute("SELECT next_fire_time FROM deployment_schedules").fetchone()[0]
    assert time.time() < nxt <= time.time() + 3600  # started at its next fire time
    conn.execute("UPDATE deployment_schedules SET next_fire_time = ?", (nxt - 3600,))
    out = subprocess.run([sys.executable, "-m", "fluvial.scheduler", "--once", "--list-runs"],
                         capture_output=True, text=True, timeout=60, env=env_for_subprocess())
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout.strip().splitlines()[-1])
    [run_id] = report["run_ids"]
    assert conn.execute("SELECT deployment_id, scheduled_start_time FROM flow_runs "
                        "WHERE id = ?", (run_id,)).fetchone() == (dep, nxt - 3600)
