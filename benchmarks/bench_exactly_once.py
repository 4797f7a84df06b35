"""Exactly-once stress: schedulers and workers killed at random, deployments redeployed.

Three ``python -m fluvial.scheduler`` processes and two ``fluvial worker start``
processes (which tick the scheduler too) run against one SQLite record for two
minutes, on deployments with interval schedules of 1-3 s (``catchup="all"``). Every
10 s one of the five processes is SIGKILLed at random and started again; every 15 s
every deployment is redeployed unchanged. At the end one last tick decides the times
up to the end, and for each deployment the runs are compared with its fire times:
the counts must be equal, with zero duplicates and zero misses.

``python -m benchmarks exactly-once`` (``--quick``: 20 s, a kill every 5 s).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from itertools import takewhile
from pathlib import Path
from typing import Any

from benchmarks.harness import Options, row

GROUP = "exactly-once"

FLOW = textwrap.dedent("""
    from fluvial import flow

    @flow
    def tick():
        return 1
""")


def _start(kind: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    if kind == "scheduler":
        args = [sys.executable, "-m", "fluvial.scheduler", "--poll", "0.2"]
    else:
        args = [sys.executable, "-m", "fluvial.cli", "worker", "start", "--pool", "stress",
                "--poll-interval", "0.2", "--limit", "2"]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stress(seconds: float, kill_every: float, redeploy_every: float,
           seed: int = 11) -> list[dict[str, Any]]:
    import fluvial.store as store
    from fluvial.deployments import Deployment
    from fluvial.scheduler import run_scheduler_once
    from fluvial.schedules import Interval
    from fluvial.store.connection import open_database

    rng = random.Random(seed)
    saved = {k: os.environ.get(k) for k in ("FLUVIAL_HOME", "FLUVIAL_DATABASE_URL")}
    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as home:
        os.environ["FLUVIAL_HOME"] = home
        os.environ.pop("FLUVIAL_DATABASE_URL", None)
        store._reset_for_tests()
        env = {**os.environ, "FLUVIAL_PROGRESS": "off"}
        flows = Path(home) / "flows.py"
        flows.write_text(FLOW)
        deployments = [
            Deployment(name=f"every-{s}s", flow_name="tick", entrypoint=f"{flows}:tick",
                       work_pool="stress",
                       schedules=[Interval(s, catchup="all", max_catchup_runs=1000)])
            for s in (1, 2, 3, 1.5)
        ]
        for dep in deployments:
            dep.apply()
        procs = [["scheduler", _start("scheduler", env)] for _ in range(3)]
        procs += [["worker", _start("worker", env)] for _ in range(2)]
        kills = redeploys = 0
        start = time.monotonic()
        next_kill, next_redeploy = start + kill_every, start + redeploy_every
        try:
            while time.monotonic() - start < seconds:
                time.sleep(0.2)
                now = time.monotonic()
                if now >= next_kill:
                    victim = rng.choice(procs)
                    victim[1].send_signal(signal.SIGKILL)
                    victim[1].wait()
                    victim[1] = _start(victim[0], env)
                    kills += 1
                    next_kill += kill_every
                if now >= next_redeploy:
                    for dep in deployments:
                        dep.apply()
                    redeploys += 1
                    next_redeploy += redeploy_every
        finally:
            end = time.time()
            for _, proc in procs:
                proc.send_signal(signal.SIGKILL)
            for _, proc in procs:
                proc.wait()
        conn = open_database()
        run_scheduler_once(conn, end)  # decide every time up to the end, as a survivor would
        end_dt = datetime.fromtimestamp(end, UTC)
        rows: list[dict[str, Any]] = []
        totals = Counter()
        for dep in deployments:
            got = sorted(r[0] for r in conn.execute(
                "SELECT scheduled_start_time FROM flow_runs WHERE deployment_id = ? "
                "AND scheduled_start_time <= ?", (dep.id, end)).fetchall())
            if not got:
                totals["misses"] += 1
                continue
            first = datetime.fromtimestamp(got[0], UTC) - timedelta(microseconds=1)
            expected = [t.timestamp() for t in takewhile(
                lambda t: t <= end_dt, dep.schedules[0].fire_times(first))]
            counts = Counter(got)
            totals["fire times"] += len(expected)
            totals["runs"] += len(got)
            totals["duplicates"] += sum(c - 1 for c in counts.values())
            totals["misses"] += len(set(expected) - set(counts))
            totals["extra"] += len(set(counts) - set(expected))
        states = dict(Counter(r[0] for r in conn.execute(
            "SELECT state_type FROM flow_runs").fetchall()))
        conn.close()
        store._reset_for_tests()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    ok = (totals["duplicates"] == 0 and totals["misses"] == 0 and totals["extra"] == 0
          and totals["runs"] == totals["fire times"])
    print(f"[exactly-once] fire times {totals['fire times']}, runs {totals['runs']}, "
          f"duplicates {totals['duplicates']}, misses {totals['misses']}, "
          f"kills {kills}, redeploys {redeploys}, run states {states}", file=sys.stderr)
    rows.append(row(
        GROUP, f"3 schedulers + 2 workers, {seconds:.0f} s, SIGKILL every {kill_every:.0f} s, "
               f"redeploy every {redeploy_every:.0f} s: runs per fire time",
        totals["runs"], "runs", target="runs == fire times, 0 duplicates, 0 misses", ok=ok,
        fire_times=totals["fire times"], duplicates=totals["duplicates"],
        misses=totals["misses"], kills=kills, redeploys=redeploys, run_states=states,
        load_average=round(os.getloadavg()[0], 1)))
    return rows


def run(options: Options | None = None) -> list[dict[str, Any]]:
    options = options or Options()
    if options.quick:
        return stress(20, kill_every=5, redeploy_every=7)
    return stress(120, kill_every=10, redeploy_every=15)


if __name__ == "__main__":
    import json

    for result in run(Options(quick="--quick" in sys.argv)):
        print(json.dumps(result))
