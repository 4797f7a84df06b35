"""Benchmarks of fluvial.store: the recorder's hot-path cost and the writer's throughput.

``run()`` returns rows ``{"group": "store", "name": ..., "value": ..., "unit": ...}``;
``python benchmarks/bench_store.py`` prints them. Each run uses a throwaway FLUVIAL_HOME.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import fluvial.store as store
from benchmarks.harness import throwaway_home
from fluvial.store.recorder import Recorder

APPENDS = 200_000
TASK_RUNS = 50_000



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


def _writer_throughput() -> list[dict]:
    rec = store.get_recorder()
    assert rec is not None
    flow_run_id = uuid.uuid4()
    ts = time.time()
    rec.flow_run_created(flow_run_id, "bench", "bench", {}, (), None, ts)
    rec.flush()
    events_before = rec.events_committed
    start = time.perf_counter()
    for _ in range(TASK_RUNS):  # what the engine records for one no-op task run
        task_id = uuid.uuid4()
        rec.task_run_created(task_id, flow_run_id, "noop", "noop", (), ts)
        rec.state(task_id, "PENDING", "Pending", None, ts)
        rec.state(task_id, "RUNNING", "Running", None, ts)
        rec.state(task_id, "COMPLETED", "Completed", None, ts)
    appended = time.perf_counter()
    rec.flush(timeout=300)
    done = time.perf_counter()
    events = rec.events_committed - events_before
    return [
        _row("writer: task runs committed per second", TASK_RUNS / (done - start), "task runs/s"),
        _row("writer: rows committed per second", events / (done - start), "rows/s"),
        _row(
            "recorder append while the writer runs",
            (appended - start) / (TASK_RUNS * 4) * 1e9,
            "ns",
        ),
    ]


def run() -> list[dict]:
    """Measure, and return one row per number."""
    with throwaway_home():
        return _append_costs() + _writer_throughput()


if __name__ == "__main__":
    for row in run():
        print(f"{row['name']:<45} {row['value']:>12,.1f} {row['unit']}")
