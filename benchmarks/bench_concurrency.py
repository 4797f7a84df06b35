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
  against the same map untagged (issue 15 target: >= 0.8x, the slots taken on the
  scheduler), measured by `tagged_vs_untagged` (see there: the steady state of both
  maps, in alternating pairs, the median of the pairs' ratios), and the peak number of
  tagged runs running at once in a tagged map of 200 runs of 20 ms (each gated alone)
  and of 1 000 runs of 2 ms (batched: a batch holds one slot while its runs run in
  turn) on the same cluster (from each run's start and end times on the workers; a
  no-op is too short to overlap): it must be exactly the limit.

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

from benchmarks.harness import Options, row, timed
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


TAGGED_ROUNDS = 9  # alternating pairs of maps (5 with --quick)


def tagged_vs_untagged(group: str, name: str, runner: Any, the_task: Any, tag: str,
                       n: int, options: Options) -> dict[str, Any]:
    """A ``.map`` of ``n`` runs of ``the_task`` tagged ``tag`` (a tag with a limit) on
    ``runner`` against the same map untagged: a tasks/s row with the ratio.

    What it measures: the steady state of both maps on one warm runner. The tagged task
    is ``the_task.with_options(tags=[tag])``: the same task name, so both maps are
    batched from one measured duration (the runner sizes batches per task name; two
    names would learn two different sizes from a few noisy first runs). Both maps run
    twice untimed first (the cluster's workers, the runner's batch sizing and the
    scheduler plugin warm). Then ``TAGGED_ROUNDS`` rounds, each one untagged map and
    one tagged map back to back, the order alternating between rounds; the run
    record's backlog is committed, untimed, after every map, so that no map pays for
    the one before it. ``ratio`` is the median over the rounds of untagged seconds /
    tagged seconds: a pair shares the machine's load of the moment, which a shared
    machine changes from one second to the next (single maps of 0.1-0.4 s vary by
    +-25 % there, so a best-of-3 on each side, compared across rounds, gave ratios
    from 0.74 to 1.08 for the same code). ``value`` and ``raw`` are the tasks/s of
    the median tagged and untagged map; ``ratios`` gives every round's ratio.
    """
    from benchmarks.bench_threads import flush_store
    from fluvial import flow

    tagged = the_task.with_options(tags=[tag])

    def one_map(which: Any) -> float:
        @flow(task_runner=runner)
        def bench_tagged_map() -> list[Any]:
            return which.map(range(n)).result()

        seconds = timed(bench_tagged_map)
        flush_store()
        return seconds

    for _ in range(2):
        one_map(the_task)
        one_map(tagged)
    rounds = 5 if options.quick else TAGGED_ROUNDS
    plain_s: list[float] = []
    tagged_s: list[float] = []
    for i in range(rounds):
        if i % 2 == 0:
            plain_s.append(one_map(the_task))
            tagged_s.append(one_map(tagged))
        else:
            tagged_s.append(one_map(tagged))
            plain_s.append(one_map(the_task))
    ratios = sorted(p / t for p, t in zip(plain_s, tagged_s, strict=True))
    ratio = statistics.median(ratios)
    tagged_med, plain_med = statistics.median(tagged_s), statistics.median(plain_s)
    return row(group, name, round(n / tagged_med, 1), "tasks/s", raw=round(n / plain_med, 1),
               ratio=ratio, target=f">= {TAGGED_TARGET:g}x untagged",
               ok=ratio >= TAGGED_TARGET, fluvial_seconds=round(tagged_med, 4),
               raw_seconds=round(plain_med, 4), n=n, rounds=rounds,
               ratios=[round(r, 3) for r in ratios])


def _dask_tagged_rows(options: Options) -> list[dict[str, Any]]:
    """A tagged map (limit = workers) against the same map untagged; the peak."""
    try:
        import distributed
    except ImportError:
        return []
    from fluvial import flow, task, unmapped
    from fluvial.concurrency import delete_limit, set_limit
    from fluvial.runners.dask import DaskTaskRunner

    workers, tag = 2, "bench-dask-slots"
    n = options.sizes([2_000], [200])[0]
    plain = task(timed_noop, name="noop_for_tags")
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
            compared = tagged_vs_untagged(
                GROUP, f"dask: map {n} tagged (limit {workers} = workers) vs untagged",
                runner, plain, tag, n, options)
            compared["workers"] = workers
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
