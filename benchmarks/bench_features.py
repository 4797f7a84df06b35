"""What features cost: cache hits, tag limits, and keeping results in the cluster.

* ``caching`` — a ``.map`` of N items that are all cache hits, against the same map
  computing with ``persist_result=True`` (the issue's bar: a hit must be cheaper than
  running a trivial task with persistence on), and against a plain uncached map.
* ``limits`` — a ``.map`` of N no-ops tagged with a limit equal to the worker count,
  against the same map untagged, on threads (target >= 0.7x) and on Dask (>= 0.8x: the
  slots are taken on the scheduler; measured by ``bench_concurrency.tagged_vs_untagged``,
  the median of alternating pairs of warm maps; bench_concurrency also reports the peak).
* ``locality`` — one 10 MB upstream consumed by 1 000 tasks on Dask and on Ray: the
  driver's peak Python allocation (tracemalloc, during a warm run) minus the peak of the
  same flow with a 10-byte upstream — what the payload itself costs the driver, apart
  from the backend's own bookkeeping for 1 000 tasks (about 18 KB a task on Dask's
  client). One trip of the payload through the driver would cost 10 MB; target: below
  half of that.
"""

from __future__ import annotations

import tempfile
import tracemalloc
from typing import Any

from benchmarks.bench_remote import WORKERS, _local_cluster, noop, noop_task
from benchmarks.bench_threads import flush_store
from benchmarks.harness import Options, compare_throughput, row
from fluvial import flow, task, unmapped
from fluvial.cache_policies import INPUTS
from fluvial.runners import ThreadPoolTaskRunner
from fluvial.runners.base import TaskRunner


def _map(runner: TaskRunner, the_task: Any, n: int) -> Any:
    @flow(task_runner=runner)
    def bench_map() -> Any:
        return the_task.map(range(n)).result()

    return bench_map()


def run_caching(options: Options | None = None) -> list[dict[str, Any]]:
    options = options or Options()
    n = options.sizes([10_000], [500])[0]
    storage = tempfile.mkdtemp(prefix="fluvial-bench-cache-")
    cached = task(noop, name="cached_noop", cache_policy=INPUTS, result_storage=storage)
    persisted = task(noop, name="persisted_noop", persist_result=True,
                     result_storage=tempfile.mkdtemp(prefix="fluvial-bench-persist-"))
    with ThreadPoolTaskRunner() as runner:
        _map(runner, cached, n)  # fill the cache: every later run is all hits
        flush_store()
        return [
            compare_throughput("caching", f"map {n}: all cache hits vs computing with "
                               "persist_result=True", n, lambda: _map(runner, persisted, n),
                               lambda: _map(runner, cached, n), repeat=options.repeat,
                               min_ratio=1.0, settle=flush_store),
            compare_throughput("caching", f"map {n}: all cache hits vs plain uncached", n,
                               lambda: _map(runner, noop_task, n),
                               lambda: _map(runner, cached, n), repeat=options.repeat,
                               settle=flush_store),
        ]


def _limited(tag: str, workers: int) -> Any:
    from fluvial.concurrency import set_limit

    set_limit(tag, workers)
    return task(noop, name=f"tagged_{tag}", tags=[tag])


def run_limits(options: Options | None = None) -> list[dict[str, Any]]:
    from fluvial.concurrency import delete_limit

    options = options or Options()
    n_threads = options.sizes([10_000], [500])[0]
    n_dask = options.sizes([2_000], [200])[0]
    rows = []
    with ThreadPoolTaskRunner() as runner:
        tagged = _limited("bench-threads", runner.max_workers)
        _map(runner, tagged, 50)
        rows.append(compare_throughput(
            "limits", f"threads: map {n_threads} tagged (limit {runner.max_workers}) vs "
            "untagged", n_threads, lambda: _map(runner, noop_task, n_threads),
            lambda: _map(runner, tagged, n_threads), repeat=options.repeat, min_ratio=0.7,
            settle=flush_store))
        delete_limit("bench-threads")
    from benchmarks.bench_concurrency import tagged_vs_untagged
    from fluvial.concurrency import set_limit
    from fluvial.runners.dask import DaskTaskRunner

    with _local_cluster() as cluster, DaskTaskRunner(address=cluster.scheduler_address) as dr:
        set_limit("bench-dask", WORKERS)
        try:  # issue 15, target 4 (measured as bench_concurrency's row is)
            rows.append(tagged_vs_untagged(
                "limits", f"dask: map {n_dask} tagged (limit {WORKERS}) vs untagged", dr,
                noop_task, "bench-dask", n_dask, options))
        finally:
            delete_limit("bench-dask")
    return rows


_SIZE = 10 * 1024 * 1024


@task
def _big() -> bytes:
    return b"x" * _SIZE


@task
def _tiny() -> bytes:
    return b"x" * 10


@task
def _consume(blob: bytes, i: int) -> int:
    return len(blob) + i


def _driver_peak(runner: TaskRunner, consumers: int, source: Any) -> int:
    @flow(task_runner=runner)
    def fan_out() -> int:
        blob = source.submit()
        return sum(_consume.map(unmapped(blob), range(consumers)).result())

    fan_out()  # warm-up: imports, function export, first-use caches are not data
    tracemalloc.start()
    try:
        fan_out()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _payload_row(backend: str, runner: TaskRunner, consumers: int) -> dict[str, Any]:
    big = _driver_peak(runner, consumers, _big)
    tiny = _driver_peak(runner, consumers, _tiny)
    extra = big - tiny
    return row("locality", f"{backend}: driver memory for a 10 MB upstream x {consumers} "
               "consumers (peak minus 10-byte run)", round(extra / 1e6, 2), "MB",
               target="< 5 MB", ok=extra < _SIZE / 2, peak_mb=round(big / 1e6, 2),
               baseline_peak_mb=round(tiny / 1e6, 2))


def run_locality(options: Options | None = None) -> list[dict[str, Any]]:
    options = options or Options()
    consumers = options.sizes([1_000], [100])[0]
    rows = []
    from fluvial.runners.dask import DaskTaskRunner

    with _local_cluster() as cluster, DaskTaskRunner(address=cluster.scheduler_address) as dr:
        rows.append(_payload_row("dask", dr, consumers))
    import ray

    from fluvial.runners.ray import RayTaskRunner

    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=WORKERS, include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        with RayTaskRunner() as rr:
            rows.append(_payload_row("ray", rr, consumers))
    finally:
        if started:
            ray.shutdown()
    return rows
