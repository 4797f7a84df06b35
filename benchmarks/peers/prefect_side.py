"""The Prefect side of ``make bench-peers``: run inside ``.venv-peers`` (Prefect 3.8.8,
prefect-dask, prefect-ray), never imported by fluvial or by the main benchmark run.

``.venv-peers/bin/python benchmarks/peers/prefect_side.py WORKLOAD N --repeat R``
prints one JSON line ``{"workload": ..., "n": N, "seconds": [...], "best": s,
"prefect": "3.8.8"}``. Workloads are the same flows the fluvial side runs:

- ``threads-map``: ``noop.map(range(N)).result()`` on ``ThreadPoolTaskRunner(W)``,
  ``W = min(32, cpu + 4)``;
- ``threads-chain``: N tasks, each submitted with the previous future;
- ``dask-map``: the map on ``DaskTaskRunner(address=...)`` of a
  ``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` started (and
  warmed up) before the timed flows;
- ``ray-map``: the map on ``RayTaskRunner()`` joining a ``ray.init(num_cpus=2)``
  session started before the timed flows.

The caller sets ``PREFECT_HOME`` (a throwaway directory) and ``PREFECT_API_URL`` (a
``prefect server start`` on 127.0.0.1). One untimed warm-up flow runs first; each timed
flow is a fresh flow run, as on the fluvial side.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

WORKERS = min(32, (os.cpu_count() or 1) + 4)


def noop(x: Any) -> Any:
    return x


@contextlib.contextmanager
def _runner(kind: str) -> Iterator[Any]:
    if kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        yield lambda: ThreadPoolTaskRunner(max_workers=WORKERS)
    elif kind == "dask":
        from distributed import Client, LocalCluster
        from prefect_dask import DaskTaskRunner

        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                          host="127.0.0.1", dashboard_address=None) as cluster, \
                Client(cluster) as client:
            client.run(lambda: None)
            yield lambda: DaskTaskRunner(address=cluster.scheduler_address)
    elif kind == "ray":
        import ray
        from prefect_ray import RayTaskRunner

        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 _node_ip_address="127.0.0.1")
        try:
            yield lambda: RayTaskRunner()
        finally:
            ray.shutdown()
    else:
        raise SystemExit(f"unknown runner {kind!r}")


def _flows(shape: str, make_runner: Callable[[], Any]) -> Callable[[int], Any]:
    from prefect import flow, task

    noop_task = task(noop, name="noop")

    if shape == "map":
        @flow(name="bench-map", task_runner=make_runner())
        def bench_map(n: int) -> list[Any]:
            return noop_task.map(range(n)).result()

        def run_map(n: int) -> Any:
            result = bench_map(n)
            assert len(result) == n, f"map of {n} returned {len(result)} results"
            return result

        return run_map

    @flow(name="bench-chain", task_runner=make_runner())
    def bench_chain(n: int) -> Any:
        future = noop_task.submit(0)
        for _ in range(n - 1):
            future = noop_task.submit(future)
        return future.result()

    def run_chain(n: int) -> Any:
        assert bench_chain(n) == 0
        return 0

    return run_chain


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("workload", choices=["threads-map", "threads-chain", "dask-map",
                                             "ray-map"])
    parser.add_argument("n", type=int)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args(argv)
    for name in ("PREFECT_HOME", "PREFECT_API_URL"):
        if not os.environ.get(name):
            raise SystemExit(f"{name} must be set (python -m benchmarks.peers sets it)")
    import prefect

    kind, shape = args.workload.split("-")
    with _runner(kind) as make_runner:
        run = _flows(shape, make_runner)
        run(min(args.n, 5))  # warm-up: imports, the flow's and the task's registration
        seconds = []
        for _ in range(args.repeat):
            gc.collect()
            start = time.perf_counter()
            run(args.n)
            seconds.append(time.perf_counter() - start)
    print(json.dumps({"workload": args.workload, "n": args.n, "seconds": seconds,
                      "best": min(seconds), "prefect": prefect.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
