"""The fluvial side of ``make bench-peers``: the flows of :mod:`benchmarks.peers.prefect_side`
on fluvial, in this process, with the run store recording (its default) into the
throwaway ``FLUVIAL_HOME`` the caller set.

``workload(name, repeat)`` returns a callable that runs one flow of N tasks; the
runners (a Dask ``LocalCluster`` of 2 single-threaded worker processes, a
``ray.init(num_cpus=2)`` session) are started and warmed up by :func:`sides` before
anything is timed, exactly as on the Prefect side.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from fluvial import flow, task

WORKERS = min(32, (os.cpu_count() or 1) + 4)


def noop(x: Any) -> Any:
    return x


noop_task = task(noop, name="noop")


def _map(make_runner: Callable[[], Any]) -> Callable[[int], Any]:
    def run(n: int) -> Any:
        @flow(name="bench-map", task_runner=make_runner())
        def bench_map() -> list[Any]:
            return noop_task.map(range(n)).result()

        result = bench_map()
        assert len(result) == n, f"map of {n} returned {len(result)} results"
        return result

    return run


def _chain(make_runner: Callable[[], Any]) -> Callable[[int], Any]:
    def run(n: int) -> Any:
        @flow(name="bench-chain", task_runner=make_runner())
        def bench_chain() -> Any:
            future = noop_task.submit(0)
            for _ in range(n - 1):
                future = noop_task.submit(future)
            return future.result()

        assert bench_chain() == 0

    return run


@contextlib.contextmanager
def sides(kind: str) -> Iterator[dict[str, Callable[[int], Any]]]:
    """The workloads of one runner kind (``threads``, ``dask``, ``ray``), runner started."""
    if kind == "threads":
        from fluvial.runners import ThreadPoolTaskRunner

        def threads() -> Any:
            return ThreadPoolTaskRunner(WORKERS)

        yield {"map": _map(threads), "chain": _chain(threads)}
    elif kind == "dask":
        import distributed

        from fluvial.runners.dask import DaskTaskRunner

        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      host="127.0.0.1", dashboard_address=None) as cluster, \
                DaskTaskRunner(address=cluster.scheduler_address) as runner:
            yield {"map": _map(lambda: runner)}
    elif kind == "ray":
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        import ray

        from fluvial.runners.ray import RayTaskRunner

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")
        try:
            with RayTaskRunner() as runner:
                yield {"map": _map(lambda: runner)}
        finally:
            ray.shutdown()
    else:
        raise ValueError(f"unknown runner kind {kind!r}")
