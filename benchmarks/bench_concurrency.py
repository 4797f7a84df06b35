"""Slot-manager latency: acquire+release per backend, and the host backend's candidates.

``run()`` returns rows ``{"group": "concurrency", "name", "value", "unit"}`` (median
of several repeats, µs per uncontended acquire+release). Rows:

- in-process: untagged (no limit: the cost a tag without a limit adds), `acquire`,
  and the runner path (`request` + `on_granted` + `release`);
- host: flock slot files (the chosen backend) next to the alternative measured
  for the choice, a SQLite `BEGIN IMMEDIATE` counter row;
- dask (scheduler plugin, `LocalCluster` of 2 processes) and ray (named actor),
  when installed — a network round trip each;
- dask, a tagged ``.map`` of 2 000 no-ops with the limit equal to the worker count
  against the same map untagged, measured alternating in one run on one
  ``DaskTaskRunner`` (issue 15 target: >= 0.8x, the slots taken on the scheduler), and
  the peak number of tagged runs running at once in a tagged map of 200 runs of
  20 ms (each gated alone) and of 1 000 runs of 2 ms (batched: a batch holds one slot
  while its runs run in turn) on the same cluster (from each run's start and end times
  on the workers; a no-op is too short to overlap): it must be exactly the limit.

``python benchmarks/bench_concurrency.py [--no-cluster]`` prints a table.
Each run uses a throwaway FLUVIAL_HOME.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from benchmarks.harness import Options, compare_throughput, row
from fluvial.concurrency import HostSlotManager, InProcessSlotManager, SlotManager

GROUP = "concurrency"
TAGGED_TARGET = 0.8


def _per_op_us(fn: Callable[[], None], n: int, repeats: int = 5) -> float:
    samples = []
    for _ in range(repeats):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(samples)


def _row(name: str, us: float) -> dict[str, Any]:
    return {"group": GROUP, "name": name, "value": round(us, 2), "unit": "µs"}


def _acquire_release(m: SlotManager, name: str) -> Callable[[], None]:
    return lambda: m.acquire(name).release()


def _request_release(m: SlotManager, name: str) -> Callable[[], None]:
    def once() -> None:
        m.request(name, 1, lambda lease: lease.release())

    return once


def _sqlite_counter(path: str) -> Callable[[], None]:
    """The alternative for the host backend: a slot counter row under BEGIN IMMEDIATE."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS slots (name TEXT PRIMARY KEY, active INT, lim INT)")
    conn.execute("INSERT OR REPLACE INTO slots VALUES ('db', 0, 3)")

    def once() -> None:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE slots SET active = active + 1 WHERE name = 'db' AND active < lim")
        conn.execute("COMMIT")
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("UPDATE slots SET active = active - 1 WHERE name = 'db'")
        conn.execute("COMMIT")

    return once


def _local_rows(home: str) -> list[dict[str, Any]]:
    rows = []
    m = InProcessSlotManager({"db": 3})
    rows.append(_row("untagged (no limit) in-process", _per_op_us(_acquire_release(m, "free"), 20_000)))
    rows.append(_row("acquire+release in-process", _per_op_us(_acquire_release(m, "db"), 20_000)))
    rows.append(_row("request+release in-process (runner path)", _per_op_us(_request_release(m, "db"), 20_000)))
    h = HostSlotManager({"db": 3}, home=home)
    rows.append(_row("acquire+release host (flock, chosen)", _per_op_us(_acquire_release(h, "db"), 5_000)))
    rows.append(_row("acquire+release host alternative (SQLite counter)",
                     _per_op_us(_sqlite_counter(os.path.join(home, "bench.db")), 1_000)))
    h.close()
    return rows


def _dask_rows() -> list[dict[str, Any]]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        return []
    from fluvial.concurrency import DaskSlotManager

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        m = DaskSlotManager(client, limits={"db": 3})
        m.acquire("db").release()
        return [_row("acquire+release dask (scheduler plugin)",
                     _per_op_us(_acquire_release(m, "db"), 300, repeats=3))]


def timed_noop(i: int, seconds: float = 0.0) -> tuple[float, float]:
    """A no-op (or a sleep) that says when it ran (the workers share this machine's clock)."""
    start = time.time()
    if seconds:
        time.sleep(seconds)
    return start, time.time()


def _peak(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals])
    now = best = 0
    for _, delta in events:
        now += delta
        best = max(best, now)
    return best


def _dask_tagged_rows(options: Options) -> list[dict[str, Any]]:
    """A tagged map (limit = workers) against the same map untagged, alternating."""
    try:
        import distributed
    except ImportError:
        return []
    from fluvial import flow, task, unmapped
    from fluvial.concurrency import delete_limit, set_limit
    from fluvial.runners.dask import DaskTaskRunner

    workers, tag = 2, "bench-dask-slots"
    n = options.sizes([2_000], [200])[0]
    plain = task(timed_noop, name="untagged_noop")
    tagged = task(timed_noop, name="tagged_noop", tags=[tag])

    def run_map(runner: Any, the_task: Any, size: int,
                seconds: float = 0.0) -> list[tuple[float, float]]:
        @flow(task_runner=runner)
        def bench_tagged_map() -> list[tuple[float, float]]:
            return the_task.map(range(size), unmapped(seconds)).result()

        return bench_tagged_map()

    set_limit(tag, workers)
    try:
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1,
                                      processes=True, host="127.0.0.1",
                                      dashboard_address=None) as cluster, \
                DaskTaskRunner(address=cluster.scheduler_address) as runner:
            run_map(runner, plain, 50)
            run_map(runner, tagged, 50)

            compared = compare_throughput(
                GROUP, f"dask: map {n} tagged (limit {workers} = workers) vs untagged", n,
                lambda: run_map(runner, plain, n), lambda: run_map(runner, tagged, n),
                repeat=options.repeat, min_ratio=TAGGED_TARGET, workers=workers)
            peak = _peak(run_map(runner, tagged, 200, 0.02))  # each run gated alone
            run_map(runner, tagged, 400, 0.002)  # measured fast: batched from now on
            batched_peak = _peak(run_map(runner, tagged, 1_000, 0.002))
    finally:
        delete_limit(tag)
    return [compared,
            row(GROUP, f"dask: peak tagged runs at once (limit {workers}, 200 runs of 20 ms)",
                peak, "runs", target=f"== {workers}", ok=peak == workers),
            row(GROUP, f"dask: peak tagged runs at once (limit {workers}, 1 000 runs of 2 ms, "
                "batched)", batched_peak, "runs", target=f"== {workers}",
                ok=batched_peak == workers)]


def _ray_rows() -> list[dict[str, Any]]:
    try:
        import ray
    except ImportError:
        return []
    from fluvial.concurrency import RaySlotManager

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        m = RaySlotManager(limits={"db": 3}, name="fluvial-slots-bench")
        m.acquire("db").release()
        rows = [_row("acquire+release ray (actor)", _per_op_us(_acquire_release(m, "db"), 200, repeats=3))]
        m.close()
        return rows
    finally:
        if started:
            ray.shutdown()


def run(options: Options | None = None, cluster: bool = True) -> list[dict[str, Any]]:
    options = options or Options()
    with tempfile.TemporaryDirectory(prefix="fluvial-bench-") as home:
        old = os.environ.get("FLUVIAL_HOME")
        os.environ["FLUVIAL_HOME"] = home
        try:
            rows = _local_rows(home)
            if cluster:
                rows += _dask_rows()
                rows += _dask_tagged_rows(options)
                rows += _ray_rows()
            return rows
        finally:
            if old is None:
                os.environ.pop("FLUVIAL_HOME", None)
            else:
                os.environ["FLUVIAL_HOME"] = old


if __name__ == "__main__":
    for r in run(cluster="--no-cluster" not in sys.argv):
        extra = f"  (raw {r['raw']}, ratio {r['ratio']})" if "ratio" in r else ""
        print(f"{r['name']:<55} {r['value']:>10.2f} {r['unit']}{extra}")
