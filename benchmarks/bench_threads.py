"""Thread runner vs a raw ``concurrent.futures.ThreadPoolExecutor``, side by side.

Rows (group ``threads``):

* ``map N no-ops`` — a flow on ``ThreadPoolTaskRunner(W)`` doing ``noop.map(range(N))``
  and ``.result()``, vs a raw ``ThreadPoolExecutor(W)`` submitting N no-ops and
  collecting their results, ``W = min(32, cpu + 4)``. Both sides create and shut down
  their pool inside the timed region (the flow starts and stops its runner). Target at
  N = 100 000: fluvial >= 1.0x raw (issue 15).
* ``map N no-ops, store on vs off`` — the same fluvial map with the run store recording
  (the default) vs ``FLUVIAL_STORE=off``; "raw" is store-off. Target: recording costs
  <= 10 % of throughput (issue 15). The writer's backlog is flushed untimed after each run so it
  does not spill into the next measurement; ``store backlog flush`` reports how long
  that flush took after the last N-task map (the work a recording process still owes).
* ``chain of L`` — L tasks, each submitted with the previous future as its argument, in
  one flow, vs raw: each step ``pool.submit(noop, prev).result()`` — the raw pool has
  no dependency mechanism, so the driver waits for each result before submitting the
  next step (the usual way to chain on a bare executor).
* ``per-run cost: ...`` — where a run's time goes, stage by stage, each stage timed
  alone in one thread over 20 000 runs (µs per run, best of the rounds): building the
  run in the driver (``TaskRun`` + ``prepare``), handing it to the runner
  (``submit_many``: its future, the ready queue), running it where it runs
  (``execute``: the task engine, settling the future, the tracker), and reading its
  result; then the raw pool's own cost per item (submit + run + result, one thread
  submitting, the pool's threads running). The sum is what one run costs fluvial when
  nothing runs alongside; under the GIL the map's throughput is about its inverse.
* ``peak memory, map N`` — ``tracemalloc`` peak of the map, measured in a fresh
  subprocess per side (imports and a 10-task warm-up done before tracing starts), so
  neither side sees the other's garbage or caches. tracemalloc counts every Python
  allocation (futures, states, task runs, the store's event queue) but not C-level
  allocations such as SQLite's page cache or thread stacks. Target: <= 2x raw.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from benchmarks.harness import ROOT, Options, best_pair, compare_throughput, row
from fluvial import flow, task
from fluvial.runners import ThreadPoolTaskRunner

GROUP = "threads"
WORKERS = min(32, (os.cpu_count() or 1) + 4)


def noop(x: Any) -> Any:
    return x


noop_task = task(noop, name="noop")


# -- the two sides -------------------------------------------------------------------

def raw_map(n: int, workers: int = WORKERS) -> list[Any]:
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(noop, i) for i in range(n)]
        return [f.result() for f in futures]


def fluvial_map(n: int, workers: int = WORKERS) -> list[Any]:
    @flow(name="bench-map", task_runner=ThreadPoolTaskRunner(workers))
    def bench_map() -> list[Any]:
        return noop_task.map(range(n)).result()

    return bench_map()


def raw_chain(length: int, workers: int = WORKERS) -> Any:
    with ThreadPoolExecutor(workers) as pool:
        value: Any = 0
        for _ in range(length):
            value = pool.submit(noop, value).result()
        return value


def fluvial_chain(length: int, workers: int = WORKERS) -> Any:
    @flow(name="bench-chain", task_runner=ThreadPoolTaskRunner(workers))
    def bench_chain() -> Any:
        future = noop_task.submit(0)
        for _ in range(length - 1):
            future = noop_task.submit(future)
        return future.result()

    return bench_chain()


# -- store ------------------------------------------------------------------------

def flush_store() -> float:
    """Commit the run store's backlog; return the seconds it took (0 if recording is off)."""
    from fluvial import store

    recorder = store.get_recorder()
    if recorder is None:
        return 0.0
    start = time.perf_counter()
    recorder.flush()
    return time.perf_counter() - start


class _StoreOff:
    def __init__(self) -> None:
        self.saved: str | None = None

    def __enter__(self) -> None:
        self.saved = os.environ.get("FLUVIAL_STORE")
        os.environ["FLUVIAL_STORE"] = "off"

    def __exit__(self, *exc: Any) -> None:
        if self.saved is None:
            os.environ.pop("FLUVIAL_STORE", None)
        else:
            os.environ["FLUVIAL_STORE"] = self.saved


def _store_off_map(n: int) -> list[Any]:
    with _StoreOff():
        return fluvial_map(n)


# -- memory ------------------------------------------------------------------------

def _memory_child(side: str, n: int, workers: int) -> int:
    """In a fresh interpreter: tracemalloc peak bytes of one map of ``n`` no-ops."""
    import logging

    logging.getLogger("fluvial").setLevel(logging.WARNING)
    fn = fluvial_map if side == "fluvial" else raw_map
    fn(10, workers)  # warm-up: first-use imports, the store, the console handler
    if side == "fluvial":
        flush_store()
    gc.collect()
    tracemalloc.start()
    result = fn(n, workers)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(result) == n
    return peak


def peak_memory(side: str, n: int, workers: int = WORKERS) -> int:
    """Run ``_memory_child`` in a subprocess; return its peak bytes."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_threads", "--memory-child", side, str(n),
         str(workers)],
        check=True, capture_output=True, text=True, cwd=ROOT, env=env,
    )
    return int(json.loads(out.stdout.strip().splitlines()[-1])["peak"])


def _memory_row(n: int, repeat: int) -> dict[str, Any]:
    best_raw = best_fluvial = None
    for i in range(repeat):
        order = ("raw", "fluvial") if i % 2 == 0 else ("fluvial", "raw")
        for side in order:
            peak = peak_memory(side, n)
            if side == "raw":
                best_raw = peak if best_raw is None else min(best_raw, peak)
            else:
                best_fluvial = peak if best_fluvial is None else min(best_fluvial, peak)
    assert best_raw is not None and best_fluvial is not None
    ratio = best_fluvial / best_raw
    return row(GROUP, f"peak memory, map {n}", round(best_fluvial / 1e6, 3), "MB",
               raw=round(best_raw / 1e6, 3), ratio=ratio, target="<= 2x raw",
               ok=ratio <= 2.0, fluvial_bytes=best_fluvial, raw_bytes=best_raw,
               method="tracemalloc peak, fresh subprocess per side")


# -- where the time goes ---------------------------------------------------------------

def _per_run_us(stage: Any, n: int, repeat: int) -> float:
    """Best µs per run of ``stage(n)`` (which does ``n`` runs' worth of one stage)."""
    best = None
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        stage(n)
        took = (time.perf_counter() - start) / n * 1e6
        best = took if best is None else min(best, took)
    assert best is not None
    return best


def _breakdown_rows(repeat: int, n: int = 20_000) -> list[dict[str, Any]]:
    from fluvial.orchestration.submission import prepare
    from fluvial.orchestration.tracking import RunTracker
    from fluvial.runners.base import LocalTaskRunner
    from fluvial.runners.threads import execute
    from fluvial.runs import TaskRun

    class _Sink(LocalTaskRunner):  # a runner that keeps what it is handed
        def __init__(self) -> None:
            super().__init__()
            self.ready: list[Any] = []

        def _start(self) -> None: ...

        def _shutdown(self, wait: bool) -> None: ...

        def duplicate(self) -> _Sink:
            return _Sink()

        def _dispatch(self, submission: Any, future: Any, captured: Any) -> None:
            self.ready.append((submission, future))

        def _dispatch_many(self, ready: list[Any], captured: Any) -> None:
            self.ready.extend(ready)

    sink = _Sink()
    sink.start()
    made: dict[str, Any] = {}

    def build(k: int) -> None:
        made["subs"] = [prepare(TaskRun(noop_task, (i,), {}, frozenset(), None), [])
                        for i in range(k)]

    def hand_over(k: int) -> None:
        tracker = RunTracker(sink)
        subs = made["subs"]
        for sub in subs:
            sub.subscriber = tracker
        tracker.submitted(k)
        sink.ready.clear()
        made["futures"] = sink.submit_many(subs)

    def run(k: int) -> None:
        for sub, fut in sink.ready:
            fut._state = None  # each round runs the same runs again
            execute(sub, fut, None)

    def read(k: int) -> None:
        for fut in made["futures"]:
            fut.result()

    def raw(k: int) -> None:
        raw_map(k)

    stages = [("build the run (driver: TaskRun + prepare)", build),
              ("hand it to the runner (submit_many: future, ready queue)", hand_over),
              ("run it (execute: task engine, settle future, tracker)", run),
              ("read its result (future.result())", read)]
    rows, total = [], 0.0
    for name, stage in stages:
        us = _per_run_us(stage, n, repeat)
        total += us
        rows.append(row(GROUP, f"per-run cost: {name}", round(us, 2), "µs/run"))
    raw_us = _per_run_us(raw, n, repeat)
    rows.append(row(GROUP, "per-run cost: all stages vs the raw pool per item", round(total, 2),
                    "µs/run", raw=round(raw_us, 2), ratio=raw_us / total,
                    note="ratio = raw µs / fluvial µs (above 1: fluvial cheaper)"))
    sink.shutdown()
    return rows


# -- entry point --------------------------------------------------------------------

def run(options: Options | None = None) -> list[dict[str, Any]]:
    """Measure the thread runner against the raw pool; return the rows."""
    options = options or Options()
    repeat = options.repeat
    sizes = options.sizes([10_000, 100_000], [2_000, 10_000])
    chain = options.chain_length(1_000, 200)
    rows: list[dict[str, Any]] = []

    raw_map(100), fluvial_map(100)  # warm-up: imports, the store, thread start-up
    flush_store()
    for n in sizes:
        big = n == max(sizes)
        rows.append(compare_throughput(
            GROUP, f"map {n} no-ops", n, lambda n=n: raw_map(n), lambda n=n: fluvial_map(n),
            repeat=repeat, settle=flush_store,
            min_ratio=1.0 if big and n >= 100_000 else None, workers=WORKERS))

    n = max(sizes)
    off_s, on_s = best_pair(lambda: _store_off_map(n), lambda: fluvial_map(n), repeat,
                            settle=flush_store)
    fluvial_map(n)
    backlog = flush_store()
    ratio = off_s / on_s
    rows.append(row(GROUP, f"map {n} no-ops, store on vs off", round(n / on_s, 1), "tasks/s",
                    raw=round(n / off_s, 1), ratio=ratio, target=">= 0.9x off",
                    ok=ratio >= 0.9, raw_means="FLUVIAL_STORE=off"))
    rows.append(row(GROUP, f"store backlog flush after map {n}", round(backlog, 3), "s"))
    rows.extend(_breakdown_rows(repeat, 2_000 if options.quick else 20_000))

    rows.append(compare_throughput(
        GROUP, f"chain of {chain}", chain, lambda: raw_chain(chain),
        lambda: fluvial_chain(chain), repeat=repeat, settle=flush_store,
        raw_means="driver waits for each step's result, then submits the next"))

    rows.append(_memory_row(n, repeat))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--memory-child":
        peak = _memory_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        print(json.dumps({"peak": peak}))
    else:
        from benchmarks.harness import render_markdown

        print(render_markdown(run()))
