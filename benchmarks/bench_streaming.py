"""Streaming maps: the driver's peak memory does not grow with the length of the map.

A ``.map`` over a generator of N no-ops with ``max_in_flight=1000``, consumed with
``as_completed`` (each result read and dropped), on threads and on Dask (a
``LocalCluster`` of 2 worker processes, its scheduler in a process of its own). Each
size runs in a fresh driver process (its own throwaway FLUVIAL_HOME, the run record on)
that reports its peak RSS (``VmHWM`` of ``/proc/self/status``: the driver only, not the
Dask scheduler or workers; not ``ru_maxrss``, which Linux carries over from the parent
through fork and exec, so a child of a big benchmark process would report the parent's
peak) and the map's throughput.

Rows: for each runner, the peak RSS at N = 1 000 000 against N = 100 000 (issue 15
target: <= 1.2x), and the throughput at each size. ``--quick`` uses 10 000 / 100 000.

``python -m benchmarks.bench_streaming`` prints the rows; ``--child RUNNER N`` is one
measured driver (what ``run`` starts).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from benchmarks.harness import ROOT, Options, row

GROUP = "streaming"
MAX_IN_FLIGHT = 1_000
TARGET = 1.2
WORKERS = 2


def noop(x: int) -> int:
    return x


def _child(runner_kind: str, n: int) -> dict[str, Any]:
    """One driver: stream N no-ops, read every result; peak RSS and tasks/s."""
    import fluvial
    from fluvial import flow, task

    the_task = task(noop, name="stream_noop")

    def measure(runner: Any) -> dict[str, Any]:
        @flow(task_runner=runner)
        def streaming_map() -> int:
            total = 0
            stream = the_task.map((i for i in range(n)), max_in_flight=MAX_IN_FLIGHT)
            for future in fluvial.as_completed(stream):
                total += future.result()
            return total

        start = time.perf_counter()
        total = streaming_map()
        seconds = time.perf_counter() - start
        assert total == n * (n - 1) // 2
        return {"seconds": seconds, "rss_mb": _peak_rss_mb()}

    if runner_kind == "threads":
        from fluvial.runners import ThreadPoolTaskRunner

        return measure(ThreadPoolTaskRunner())
    from fluvial.runners.dask import DaskTaskRunner

    # the cluster (its scheduler too) lives in another process: only the driver is measured
    cluster = subprocess.Popen([sys.executable, "-c", _CLUSTER], stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert cluster.stdout is not None
        address = cluster.stdout.readline().strip()
        with DaskTaskRunner(address=address) as runner:
            return measure(runner)
    finally:
        assert cluster.stdin is not None
        cluster.stdin.close()
        cluster.wait(60)


def _peak_rss_mb() -> float:
    """This process's own peak resident set size, in MB."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


_CLUSTER = f"""
import sys
from distributed import LocalCluster
with LocalCluster(n_workers={WORKERS}, threads_per_worker=1, processes=True,
                  host="127.0.0.1", dashboard_address=None) as cluster:
    print(cluster.scheduler_address, flush=True)
    sys.stdin.read()
"""


def _measured(runner_kind: str, n: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="fluvial-bench-stream-") as home:
        env = {**os.environ, "FLUVIAL_HOME": home,
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        out = subprocess.run([sys.executable, "-m", "benchmarks.bench_streaming", "--child",
                              runner_kind, str(n)], env=env, cwd=str(ROOT), check=True,
                             capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def run(options: Options | None = None) -> list[dict[str, Any]]:
    options = options or Options()
    if options.n is not None:
        small, large = options.n, options.n * 10
    else:
        small, large = options.sizes([100_000, 1_000_000], [10_000, 100_000])
    rows = []
    for kind in ("threads", "dask"):
        if kind == "dask":
            try:
                import distributed  # noqa: F401
            except ImportError:
                continue
        at_small, at_large = _measured(kind, small), _measured(kind, large)
        ratio = at_large["rss_mb"] / at_small["rss_mb"]
        rows.append(row(GROUP, f"{kind}: driver peak RSS, streaming map of {large:,} vs "
                        f"{small:,} (max_in_flight {MAX_IN_FLIGHT})", round(at_large["rss_mb"], 1),
                        "MB", raw=round(at_small["rss_mb"], 1), ratio=ratio,
                        target=f"<= {TARGET:g}x", ok=ratio <= TARGET))
        for n, got in ((small, at_small), (large, at_large)):
            rows.append(row(GROUP, f"{kind}: streaming map of {n:,}, results read as "
                            "completed", round(n / got["seconds"], 1), "tasks/s", n=n))
    return rows


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        print(json.dumps(_child(sys.argv[2], int(sys.argv[3]))))
    else:
        quick = "--quick" in sys.argv
        for r in run(Options(quick=quick)):
            extra = f"  (at the small size {r['raw']}, ratio {r['ratio']})" if "ratio" in r else ""
            print(f"{r['name']:<80} {r['value']:>12,.1f} {r['unit']}{extra}")
