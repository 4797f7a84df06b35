"""Tag limits on DaskTaskRunner are enforced on the scheduler: a tagged map goes to Dask
at once and the slots plugin holds each run (``no-worker``, restricted to no worker)
until it is ready and holds its slots; a freed slot releases the next run there."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from slot_helpers import peak, wait_for_file

import fluvial
from fluvial import flow, task
from fluvial.concurrency import delete_limit, set_limit

pytest.importorskip("distributed")


def _held_on_scheduler(dask_scheduler: Any, prefix: str) -> dict[str, int]:
    """States of the scheduler's unfinished tasks whose key starts with ``prefix`` (and
    how many of them the slots plugin holds back)."""
    from fluvial.concurrency._dask import HELD

    counts: dict[str, int] = {}
    for key, ts in dask_scheduler.tasks.items():
        if isinstance(key, str) and key.startswith(prefix) and ts.state != "memory":
            counts[ts.state] = counts.get(ts.state, 0) + 1
            if ts.worker_restrictions == {HELD}:
                counts["held"] = counts.get("held", 0) + 1
    return counts


def _on_scheduler(client: Any, prefix: str) -> dict[str, int]:
    return client.run_on_scheduler(_held_on_scheduler, prefix=prefix)


@task(tags=["gated"])
def gated_wait(i: int, go: str, log: str) -> int:
    start = time.time()
    with open(log + f".started-{i}", "w") as fh:
        fh.write("x")
    while not os.path.exists(go):
        time.sleep(0.005)
    with open(log, "a") as fh:
        fh.write(f"{start} {time.time()}\n")
    return i


def _intervals(log: Path) -> list[tuple[float, float]]:
    return [(float(a), float(b)) for a, b in (ln.split() for ln in log.read_text().splitlines())]


def _started(log: Path) -> int:
    return len(list(log.parent.glob(log.name + ".started-*")))


def test_a_tagged_map_waits_on_the_scheduler_not_in_the_driver(session_runner, tmp_path):
    runner = session_runner("dask")
    go, log = tmp_path / "go", tmp_path / "log"
    set_limit("gated", 1)
    try:
        @flow(task_runner=runner)
        def gated_map():
            futures = gated_wait.map(range(5), fluvial.unmapped(str(go)),
                                     fluvial.unmapped(str(log)))
            wait_for_file(str(log) + ".started-0")
            time.sleep(0.3)  # any second run would have started by now
            seen = _on_scheduler(runner.client, "gated_wait-")
            started = _started(log)
            go.write_text("go")
            return futures.result(), seen, started

        results, seen, started = gated_map()
    finally:
        delete_limit("gated")
    assert results == list(range(5))
    assert started == 1
    # they went to Dask without waiting for slots: one running, the others held by the
    # plugin on the scheduler (the driver's batch queue may still keep one back while
    # the cluster's threads are all taken)
    assert seen["processing"] == 1 and seen["no-worker"] == seen["held"] >= 3, seen
    assert peak(_intervals(log)) == 1


@task
def upstream_wait(go: str) -> int:
    while not os.path.exists(go):
        time.sleep(0.005)
    return 1


@task(tags=["gated"])
def gated_quick(x: int, log: str) -> int:
    with open(log, "a") as fh:
        fh.write(f"{x}\n")
    return x


def test_a_run_takes_its_slot_only_once_its_upstreams_are_done(session_runner, tmp_path):
    # limit 1: a tagged run whose upstream is still running must not sit on the slot
    runner = session_runner("dask")
    go, log = tmp_path / "go", tmp_path / "log"
    set_limit("gated", 1)
    try:
        @flow(task_runner=runner)
        def ordered():
            first = upstream_wait.submit(str(go))
            waiting = gated_quick.submit(first, str(log))
            free = gated_quick.map([10, 20], fluvial.unmapped(str(log)))
            done = free.result(timeout=60)  # they ran while the upstream still runs
            go.write_text("go")
            return done, waiting.result(timeout=60)

        done, after = ordered()
    finally:
        delete_limit("gated")
    assert done == [10, 20] and after == 1
    assert log.read_text().splitlines()[-1] == "1"


def test_raising_a_limit_releases_the_runs_it_held(session_runner, tmp_path):
    runner = session_runner("dask")
    go, log = tmp_path / "go", tmp_path / "log"
    go.write_text("go")
    set_limit("gated", 0)
    try:
        @flow(task_runner=runner)
        def blocked():
            futures = gated_wait.map(range(3), fluvial.unmapped(str(go)),
                                     fluvial.unmapped(str(log)))
            time.sleep(1.0)
            seen = _on_scheduler(runner.client, "gated_wait-")
            started = _started(log)
            set_limit("gated", 2)  # the plugin hears of it: two runs go, then the third
            return futures.result(timeout=60), seen, started

        results, seen, started = blocked()
    finally:
        delete_limit("gated")
    assert started == 0
    assert seen == {"no-worker": 3, "held": 3}, seen
    assert results == [0, 1, 2]
    assert peak(_intervals(log)) <= 2


def test_the_plugin_forgets_settled_runs(session_runner, tmp_path):
    runner = session_runner("dask")
    set_limit("gated", 2)
    try:
        @flow(task_runner=runner)
        def many():
            return gated_quick.map(range(40), fluvial.unmapped(str(tmp_path / "log"))).result()

        assert many() == list(range(40))
    finally:
        delete_limit("gated")

    def gated_left(dask_scheduler: Any) -> tuple[int, int]:
        plugin = dask_scheduler.plugins["fluvial-slots"]
        return len(plugin.gated), len(plugin.slots.table.leases())

    import gc

    gc.collect()  # the flow's futures (and their Dask futures) are gone
    deadline = time.monotonic() + 30  # Dask forgets the released results soon after
    while runner.client.run_on_scheduler(gated_left) != (0, 0) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert runner.client.run_on_scheduler(gated_left) == (0, 0)


def test_deleting_a_limit_lets_the_held_runs_go(session_runner, tmp_path):
    runner = session_runner("dask")
    set_limit("gated", 0)
    try:
        @flow(task_runner=runner)
        def paused():
            futures = gated_quick.map(range(4), fluvial.unmapped(str(tmp_path / "log")))
            # the 4 runs go as 4 Dask tasks, or as fewer batches once gated_quick is
            # measured fast (by earlier tests); wait until all are sent and held
            batcher = runner._batcher
            deadline = time.monotonic() + 30  # (the runs reach the scheduler in turn)
            seen: dict[str, int] = {}
            while time.monotonic() < deadline:
                seen = _on_scheduler(runner.client, "gated_quick-")
                if not batcher._ready and seen.get("held", 0) == batcher._in_flight > 0:
                    break
                time.sleep(0.05)
            ran = (tmp_path / "log").exists()
            delete_limit("gated")  # no limit on the tag any more
            return futures.result(timeout=60), seen, ran

        results, seen, ran = paused()
    finally:
        delete_limit("gated")
    assert not ran  # every run was held: none ran
    assert seen.get("held", 0) >= 1 and seen == {"no-worker": seen["held"], "held": seen["held"]}
    assert results == [0, 1, 2, 3]


def test_a_limit_raised_by_another_process_releases_the_runs_it_held(
        session_runner, tmp_path, monkeypatch):
    # nothing more is submitted once the map is held: only the runner's watch of the
    # stored limits can see the other process's change and tell the scheduler
    from fluvial.concurrency import _limits

    monkeypatch.setattr(_limits, "REFRESH_SECONDS", 0.1)
    runner = session_runner("dask")
    log = tmp_path / "log"
    set_limit("gated", 0)
    try:
        @flow(task_runner=runner)
        def paused():
            futures = gated_quick.map(range(4), fluvial.unmapped(str(log)))
            batcher = runner._batcher  # (4 Dask tasks, or fewer batches: see above)
            deadline = time.monotonic() + 30
            held = 0
            while time.monotonic() < deadline:
                held = _on_scheduler(runner.client, "gated_quick-").get("held", 0)
                if not batcher._ready and held == batcher._in_flight > 0:
                    break
                time.sleep(0.05)
            assert not log.exists()  # held: none ran
            subprocess.run([sys.executable, "-c", "from fluvial.concurrency import set_limit; "
                            "set_limit('gated', 2)"], check=True, timeout=60)
            return futures.result(timeout=60), held

        results, held = paused()
    finally:
        delete_limit("gated")
    assert held >= 1
    assert results == [0, 1, 2, 3]


def test_the_limits_watch_stops_when_the_process_points_at_another_record(
        session_runner, tmp_path, monkeypatch):
    # the watch reads the record it started on; pointed elsewhere (as between tests), it
    # stops rather than open (and so create) the other record
    from fluvial.concurrency import _limits
    from fluvial.concurrency._dask import DaskSlotManager

    monkeypatch.setattr(_limits, "REFRESH_SECONDS", 0.05)
    manager = DaskSlotManager(session_runner("dask").client)
    try:
        manager.watch_limits("gated")
        assert manager._watch is not None
        elsewhere = tmp_path / "elsewhere"
        monkeypatch.setenv("FLUVIAL_HOME", str(elsewhere))
        deadline = time.monotonic() + 30
        while manager._watch is not None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert manager._watch is None, "the watch did not stop"
        assert not elsewhere.exists()
    finally:
        manager.close()


@task
def fails() -> int:
    raise ValueError("upstream failed")


def test_a_tagged_run_the_driver_launches_later_is_gated_too(session_runner, tmp_path):
    # an allow_failure upstream: the driver launches the tagged run once it has failed
    runner = session_runner("dask")
    set_limit("gated", 1)
    try:
        @flow(task_runner=runner)
        def later():
            up = fails.submit()
            return gated_quick.submit(fluvial.allow_failure(up), str(tmp_path / "log"))

        state = later(return_state=True)
    finally:
        delete_limit("gated")
    assert state.is_completed(), state
    assert (tmp_path / "log").exists()


@task(tags=["gated"])
def gated_brief(i: int, log: str) -> int:
    start = time.time()
    time.sleep(0.001)
    with open(log, "a") as fh:
        fh.write(f"{start} {time.time()}\n")
    return i


def test_batched_tagged_runs_keep_the_limit(session_runner, tmp_path):
    # runs of 1 ms are sent in batches; a batch holds one slot while its runs run in
    # turn, so the cluster's 4 threads still run at most 3 of them at once
    runner = session_runner("dask")
    set_limit("gated", 3)
    log = tmp_path / "log"
    try:
        @flow(task_runner=runner)
        def brief(n: int):
            return gated_brief.map(range(n), fluvial.unmapped(str(log))).result()

        brief(200)  # measured fast: the next map goes in batches
        log.unlink()
        assert brief(600) == list(range(600))
        assert not runner._sizer.slow("gated_brief"), "measured too slow to be batched"
    finally:
        delete_limit("gated")
    intervals = _intervals(log)
    assert len(intervals) == 600
    assert peak(intervals) == 3
