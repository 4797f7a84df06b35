"""Benchmarks of fluvial.store: the recorder's hot-path cost and the writer's throughput.

``run(options)`` returns rows ``{"group": "store", "name": ..., "value": ..., "unit": ...}``;
``python -m benchmarks.bench_store [--quick]`` prints them. Each run uses a throwaway
FLUVIAL_HOME. The rows of issue 15's target 5:

* ``writer: task runs committed/s, small db`` and ``..., after 1M rows`` — settled task
  runs as the engine records them (one ``task_run_finished`` each: a task_runs row, its
  RUNNING and final states), appended by the driver as fast as it can, timed from the
  first append until ``flush()`` returns (every one committed by the writer process).
  The second row first records 1 000 000 runs (untimed) into the same database, so it
  shows whether the writer slows down as the record grows. Target: >= 100 000/s.
* ``writer: a flow's state committed while 100,000 runs drain`` — milliseconds from a
  flow run's state being appended to ``flush_urgent()`` returning (its batch committed),
  asked every 10 ms while the writer works through a backlog of 100 000 settled runs:
  median, with p90 and max. The urgent batch overtakes the backlog, and the batch being
  committed gives way to it between chunks.
* ``store backlog flush after a threads map of 100 000`` — seconds ``flush()`` takes
  right after a flow's ``noop.map(range(100_000)).result()`` returns on the thread
  runner: what a recording process still owes when the work is done. Target: <= 1 s.
* ``threads map 100 000, store on vs off`` — the same map with recording on (the
  default) and with ``FLUVIAL_STORE=off``, alternating in one run, best of ``repeat``
  each, the backlog flushed untimed after each recording run. Target: >= 0.9x off.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable
from typing import Any

import fluvial.store as store
from benchmarks.harness import Options, best_pair, row, throwaway_home
from fluvial.runs import time_ordered_id
from fluvial.store.recorder import Recorder

APPENDS = 200_000
TASK_RUNS = 100_000  # per throughput measurement
GROWN = 1_000_000  # runs recorded before the "after 1M rows" measurement
MAP = 100_000  # the threads map of the backlog and store on/off rows


def _best_ns_per_call(loop: Callable[[], None], calls: int, repeat: int = 3) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter_ns()
        loop()
        best = min(best, (time.perf_counter_ns() - start) / calls)
    return best


def _row(name: str, value: float, unit: str) -> dict:
    return {"group": "store", "name": name, "value": round(value, 1), "unit": unit}


def _append_costs() -> list[dict]:
    # A writer that only wakes on flush/close, so appends are timed alone.
    rec = Recorder(interval=3600, wake_at=10**12, max_batch=50_000)
    ids = [uuid.uuid4() for _ in range(APPENDS)]
    flow_run_id = uuid.uuid4()
    ts = time.time()

    def states() -> None:
        state = rec.state
        for run_id in ids:
            state(run_id, "COMPLETED", "Completed", None, ts)

    def creates() -> None:
        created = rec.task_run_created
        for run_id in ids:
            created(run_id, flow_run_id, "noop", "noop", (), ts)

    def logs() -> None:
        log = rec.log
        for run_id in ids:
            log(run_id, 20, "message", ts)

    def baseline() -> None:  # the loop alone, to subtract
        for _run_id in ids:
            pass

    loop_ns = _best_ns_per_call(baseline, APPENDS)
    rows = []
    for name, loop in [
        ("recorder append: state()", states),
        ("recorder append: task_run_created()", creates),
        ("recorder append: log()", logs),
    ]:
        rows.append(_row(name, _best_ns_per_call(loop, APPENDS) - loop_ns, "ns"))
        rec._queue.clear()  # not timing the writer here
    rec.close()
    rows.append(_row("get_recorder() (warm)", _best_ns_per_call(_get_recorder_loop, 10_000), "ns"))
    return rows


def _get_recorder_loop() -> None:
    get = store.get_recorder
    for _ in range(10_000):
        get()


def _record_settled_runs(rec: Recorder, flow_run_id: uuid.UUID, n: int) -> None:
    """Append ``n`` settled task runs, as the engine records a no-op's (one event each)."""
    finished = rec.task_run_finished
    ts = time.time()
    for _ in range(n):
        finished(time_ordered_id(), flow_run_id, "noop", "noop-key", (), ts, "COMPLETED",
                 "Completed", None, ts, True)


def _committed_per_second(rec: Recorder, flow_run_id: uuid.UUID, n: int) -> tuple[float, float]:
    """Task runs/s from the first append until all ``n`` are committed; and rows/s."""
    rec.flush()
    events_before = rec.events_committed
    start = time.perf_counter()
    _record_settled_runs(rec, flow_run_id, n)
    rec.flush(timeout=600)
    seconds = time.perf_counter() - start
    assert rec.events_committed - events_before == n, "not every run was committed"
    return n / seconds, 3 * n / seconds  # a task_runs row and two states each


def _urgent_latency(rec: Recorder, flow_run_id: uuid.UUID, n: int) -> dict:
    """Milliseconds for a flow run's state to be committed while ``n`` runs drain."""
    rec.flush()
    _record_settled_runs(rec, flow_run_id, n)
    waits = []
    while rec.pending or rec._unacknowledged():
        time.sleep(0.01)
        rec.state(flow_run_id, "RUNNING", "Running", None, time.time(), urgent=True)
        start = time.perf_counter()
        rec.flush_urgent(timeout=60)
        waits.append((time.perf_counter() - start) * 1000)
    rec.flush(timeout=600)
    waits.sort()
    return row("store", f"writer: a flow's state committed while {n:,} runs drain",
               round(waits[len(waits) // 2], 2), "ms (median)",
               p90=round(waits[int(len(waits) * 0.9)], 2), max=round(waits[-1], 2),
               samples=len(waits), load=os.getloadavg()[0])


def _writer_throughput(grown: int, n: int) -> list[dict]:
    rec = store.get_recorder()
    assert rec is not None
    flow_run_id = uuid.uuid4()
    rec.flow_run_created(flow_run_id, "bench", "bench", {}, (), None, time.time())
    _record_settled_runs(rec, flow_run_id, 2_000)  # warm: the writer process is up
    small, small_rows = _committed_per_second(rec, flow_run_id, n)
    urgent = _urgent_latency(rec, flow_run_id, n)
    for _ in range(grown // 100_000):  # untimed: grow the record
        _record_settled_runs(rec, flow_run_id, 100_000)
        rec.flush(timeout=600)
    after, _ = _committed_per_second(rec, flow_run_id, n)
    return [
        row("store", "writer: task runs committed/s, small db", round(small, 1),
            "task runs/s", target=">= 100000", ok=small >= 100_000, runs=n,
            rows_per_s=round(small_rows, 1), load=os.getloadavg()[0]),
        row("store", f"writer: task runs committed/s, after {grown // 1000}k rows",
            round(after, 1), "task runs/s", target=">= 100000", ok=after >= 100_000, runs=n,
            vs_small_db=round(after / small, 3), load=os.getloadavg()[0]),
        urgent,
    ]


def _threads_rows(n: int, repeat: int) -> list[dict[str, Any]]:
    from benchmarks.bench_threads import _store_off_map, flush_store, fluvial_map

    fluvial_map(100), _store_off_map(100)  # warm-up: imports, the store, thread start-up
    flush_store()
    off_s, on_s = best_pair(lambda: _store_off_map(n), lambda: fluvial_map(n), repeat,
                            settle=flush_store)
    backlogs = []
    for _ in range(max(1, repeat)):
        fluvial_map(n)
        backlogs.append(flush_store())
    ratio = off_s / on_s
    backlog = min(backlogs)
    return [
        row("store", f"store backlog flush after a threads map of {n}", round(backlog, 3),
            "s", target="<= 1 s", ok=backlog <= 1.0, every=[round(b, 3) for b in backlogs],
            load=os.getloadavg()[0]),
        row("store", f"threads map {n}, store on vs off", round(n / on_s, 1), "tasks/s",
            raw=round(n / off_s, 1), ratio=ratio, target=">= 0.9x off", ok=ratio >= 0.9,
            raw_means="FLUVIAL_STORE=off, alternating with recording on",
            load=os.getloadavg()[0]),
    ]


def run(options: Options | None = None) -> list[dict]:
    """Measure, and return one row per number."""
    options = options or Options()
    n = options.n or (20_000 if options.quick else TASK_RUNS)
    grown = 100_000 if options.quick or options.n else GROWN
    map_n = options.n or (10_000 if options.quick else MAP)
    with throwaway_home():
        rows = _append_costs() + _writer_throughput(grown, n)
    with throwaway_home():
        rows += _threads_rows(map_n, options.repeat)
    return rows


if __name__ == "__main__":
    import sys

    for result in run(Options(quick="--quick" in sys.argv)):
        print(f"{result['name']:<50} {result['value']:>12,.1f} {result['unit']}"
              + (f"  (raw {result['raw']:,.1f}, ratio {result['ratio']})" if "raw" in result
                 else ""))
