"""Benchmarks of the scheduler: how soon after its fire time a run exists, and a crowded minute.

- **latency**: deployments on 1-second interval schedules, one standalone scheduler
  process (``python -m fluvial.scheduler --list-runs``) on the real clock; for every
  run it created, from its fire time to the end of the tick that committed it (when a
  worker could see it). Target: p99 <= 100 ms.
- **crowded minute**: 10 000 deployments all due at the same instant, two competing
  scheduler processes on SQLite. Target: every run created within 10 s of the fire
  time, zero duplicates (one run per deployment, one ``created`` tick per run).

Each measurement uses a throwaway ``FLUVIAL_HOME``; ``python -m benchmarks scheduler``.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from benchmarks.harness import Options, row, throwaway_home

GROUP = "scheduler"



def _add_deployments(conn: Any, schedules: list[Any], next_fire: float | None) -> None:
    from fluvial.store.connection import transaction

    now = time.time()
    deployments, rows = [], []
    for i, schedule in enumerate(schedules):
        dep_id = str(uuid.uuid4())
        deployments.append((dep_id, "bench", f"d{i}", "flows.py:bench", "{}", "[]", "default",
                            now, now))
        rows.append((str(uuid.uuid4()), dep_id, schedule.derived_slug,
                     json.dumps(schedule.to_dict()), next_fire))
    with transaction(conn):
        conn.executemany(
            "INSERT INTO deployments (id, flow_name, name, entrypoint, parameters, tags, "
            "work_pool, paused, created, updated) VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
            deployments)
        conn.executemany(
            "INSERT INTO deployment_schedules (id, deployment_id, slug, schedule, active, "
            "next_fire_time) VALUES (?, ?, ?, ?, 1, ?)", rows)


def _start_schedulers(count: int, env: dict[str, str], duration: float,
                      poll: float = 0.5, *extra: str) -> list[subprocess.Popen[str]]:
    return [subprocess.Popen(
        [sys.executable, "-m", "fluvial.scheduler", "--duration", str(duration),
         "--poll", str(poll), *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True) for _ in range(count)]


def _wait(procs: list[subprocess.Popen[str]], timeout: float) -> None:
    for proc in procs:
        _, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"a scheduler process failed:\n{err[-2000:]}")


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def latency(deployments: int, seconds: float) -> list[dict[str, Any]]:
    """Runs of ``deployments`` 1-second schedules for ``seconds``: creation latency."""
    from fluvial.schedules import Interval
    from fluvial.store.connection import open_database

    with throwaway_home():
        env = dict(os.environ)
        conn = open_database()
        # anchors spread over the second, so fire times are not all at once
        anchors = [datetime(2020, 1, 1, tzinfo=UTC) + timedelta(seconds=i / deployments)
                   for i in range(deployments)]
        _add_deployments(conn, [Interval(1, anchor_date=a) for a in anchors], None)
        [proc] = _start_schedulers(1, env, seconds, 1.0, "--list-runs")
        out, err = proc.communicate(timeout=seconds + 60)
        if proc.returncode != 0:
            raise RuntimeError(f"the scheduler failed:\n{err[-2000:]}")
        committed = {}
        for line in out.splitlines():
            report = json.loads(line)
            committed.update(dict.fromkeys(report.get("run_ids", []), report["committed_at"]))
        starts = dict(conn.execute("SELECT id, scheduled_start_time FROM flow_runs").fetchall())
        conn.close()
        lags = [(at - starts[run_id]) * 1000 for run_id, at in committed.items()]
    if not lags:
        raise RuntimeError("the scheduler created no runs")
    p99 = _percentile(lags, 0.99)
    return [
        row(GROUP, "scheduled run created after its fire time, p99", round(p99, 1), "ms",
            target="<= 100 ms", ok=p99 <= 100,
            p50_ms=round(statistics.median(lags), 1), max_ms=round(max(lags), 1),
            runs=len(lags), load_average=round(os.getloadavg()[0], 1),
            method=f"{deployments} deployments on 1 s intervals, one "
                                   f"`python -m fluvial.scheduler` for {seconds:.0f} s, SQLite; "
                                   "from the fire time to the end of the tick that "
                                   "committed the run"),
    ]


def crowded_minute(deployments: int, schedulers: int = 2, lead: float = 6.0,
                   linger: float = 20.0) -> list[dict[str, Any]]:
    """``deployments`` due at one instant, ``lead`` seconds from now, and ``schedulers``
    competing processes on SQLite, which stop ``linger`` seconds after it."""
    from fluvial.schedules import Interval
    from fluvial.store.connection import open_database

    with throwaway_home():
        env = dict(os.environ)
        conn = open_database()
        fire = datetime.fromtimestamp(time.time() + lead, UTC).replace(microsecond=0)
        schedule = Interval(timedelta(hours=1), anchor_date=fire)
        _add_deployments(conn, [schedule] * deployments, fire.timestamp())
        procs = _start_schedulers(schedulers, env,
                                  duration=(fire.timestamp() - time.time()) + linger)
        seen_all = None
        while any(p.poll() is None for p in procs):
            count = conn.execute("SELECT count(*) FROM flow_runs").fetchone()[0]
            if count >= deployments and seen_all is None:
                seen_all = time.time()
            time.sleep(0.05)
        _wait(procs, 120)
        created = conn.execute(
            "SELECT count(*), count(DISTINCT deployment_id), max(created) FROM flow_runs "
            "WHERE scheduled_start_time = ?", (fire.timestamp(),)).fetchone()
        ticks = dict(conn.execute(
            "SELECT outcome, count(*) FROM schedule_ticks GROUP BY outcome").fetchall())
        conn.close()
    runs, distinct, _ = created
    within = (seen_all - fire.timestamp()) if seen_all is not None else float("inf")
    duplicates = runs - distinct + ticks.get("duplicate", 0) + (ticks.get("created", 0) - runs)
    ok = runs == deployments and duplicates == 0 and within <= 10
    return [
        row(GROUP, f"{deployments} deployments due in one minute, {schedulers} schedulers, "
                   "all runs created", round(within, 2), "s", target="<= 10 s, 0 duplicates",
            ok=ok, runs=runs, expected=deployments, duplicates=duplicates,
            ticks=ticks, load_average=round(os.getloadavg()[0], 1), method="two `python -m fluvial.scheduler` processes, SQLite"),
    ]


def run(options: Options | None = None) -> list[dict[str, Any]]:
    options = options or Options()
    if options.quick:
        return [*latency(10, 4), *crowded_minute(1000)]
    return [*latency(50, 20), *crowded_minute(10_000)]


if __name__ == "__main__":
    for result in run(Options(quick="--quick" in sys.argv)):
        print(json.dumps(result))
