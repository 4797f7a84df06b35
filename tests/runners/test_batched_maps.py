"""Batched maps on Dask and Ray: the small runs of a ``.map`` go to the cluster in groups
(one backend task each), sized from measured durations, and every run inside a group
is still its own run — its own state and future, its own record, its own retries.
Slow runs are not grouped (they spread over every worker), and a group whose worker
dies leaves the runs of the groups that completed alone."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from fluvial import StateType, flow, get_run_context, task
from fluvial.store import get_recorder, queries


@task
def halve_even(x: int) -> int:
    if x % 7 == 3:
        raise ValueError(f"odd one out: {x}")
    return x // 2


@task
def noted(x: int, folder: str) -> int:
    """Counts its executions in ``folder`` (one file per item, one line per execution)."""
    with open(os.path.join(folder, f"{x}.runs"), "a") as f:
        f.write("ran\n")
    return x


@task(retries=2, retry_delay_seconds=0)
def flaky_item(x: int, folder: str) -> int:
    """Item 5 fails on its first attempt; every attempt is counted in ``folder``."""
    path = os.path.join(folder, f"{x}.runs")
    with open(path, "a") as f:
        f.write("ran\n")
    if x == 5 and Path(path).read_text().count("ran") == 1:
        raise RuntimeError("first attempt of item 5")
    return x


@task
def kills_worker_once(x: int, folder: str, victim: int) -> int:
    """Counts its executions; the ``victim`` item ends its worker process the first time."""
    path = os.path.join(folder, f"{x}.runs")
    with open(path, "a") as f:
        f.write(f"ran {time.time()!r}\n")
    if x == victim and Path(path).read_text().count("ran") == 1:
        Path(folder, "died").write_text(repr(time.time()))
        os._exit(3)
    time.sleep(0.0005)
    return x


@task
def nap_where(seconds: float) -> tuple[int, float, float]:
    start = time.time()
    time.sleep(seconds)
    return os.getpid(), start, time.time()


@pytest.fixture(params=["dask", "ray"])
def cluster_runner(request, session_runner):
    return session_runner(request.param)


def _count_batches(runner: Any, batched: set[Any] | None = None) -> list[int]:
    """The size of every group the runner sends as one backend task (and the first
    argument of each run in them, into ``batched``)."""
    sizes: list[int] = []
    original = runner._launch_batch

    def launch_batch(task: Any, pairs: Any, options: Any, done: Any) -> None:
        sizes.append(len(pairs))
        if batched is not None:
            batched.update(s.task_run.args[0] for s, _ in pairs)
        original(task, pairs, options, done)

    runner._launch_batch = launch_batch
    return sizes


def _warm(runner: Any, fn: Any, *args: Any) -> None:
    """Measure ``fn`` on ``runner`` so that its next map is batched."""
    @flow(task_runner=runner)
    def warm() -> None:
        fn.map(range(64), *args).wait()

    warm()


def _runs(folder: Path, n: int) -> list[int]:
    return [(folder / f"{x}.runs").read_text().count("ran") if (folder / f"{x}.runs").exists()
            else 0 for x in range(n)]


def test_each_run_of_a_batch_has_its_own_state_future_and_record(cluster_runner):
    _warm(cluster_runner, halve_even)
    sizes = _count_batches(cluster_runner)
    try:
        @flow(task_runner=cluster_runner)
        def batched() -> tuple[Any, list[Any]]:
            futures = halve_even.map(range(300))
            futures.wait()
            return get_run_context().flow_run.id, [f.state for f in futures]

        flow_run_id, states = batched()
    finally:
        del cluster_runner._launch_batch
    assert sizes and max(sizes) > 1, f"the map was not batched: {sizes}"
    assert len({s.run_id for s in states}) == 300
    for x, state in enumerate(states):
        if x % 7 == 3:
            assert state.type is StateType.FAILED
            assert isinstance(state.result(raise_on_failure=False), ValueError)
        else:
            assert state.type is StateType.COMPLETED and state.result() == x // 2
            assert state.start_ts is not None and state.ts >= state.start_ts
    get_recorder().flush()
    records = queries.task_runs(flow_run_id)
    assert len(records) == 300  # recorded once each
    by_id = {r.id: r for r in records}
    assert sorted(by_id) == sorted(s.run_id for s in states)
    failed = [r for r in records if r.state_type == "FAILED"]
    assert len(failed) == len([x for x in range(300) if x % 7 == 3])
    assert all(r.start_time is not None for r in records if r.state_type == "COMPLETED")


def test_a_failing_run_in_a_batch_fails_and_retries_alone(cluster_runner, tmp_path: Path):
    warm_dir = tmp_path / "warm"
    warm_dir.mkdir()
    _warm(cluster_runner, flaky_item, str(warm_dir))
    sizes = _count_batches(cluster_runner)
    try:
        @flow(task_runner=cluster_runner)
        def retrying() -> list[Any]:
            futures = flaky_item.map(range(200), str(tmp_path))
            futures.wait()
            return [(f.state.type, f.result(raise_on_failure=False)) for f in futures]

        outcome = retrying()
    finally:
        del cluster_runner._launch_batch
    assert sizes and max(sizes) > 1, f"the map was not batched: {sizes}"
    assert outcome == [(StateType.COMPLETED, x) for x in range(200)]
    runs = _runs(tmp_path, 200)
    assert runs[5] == 2  # its retry, and only its own
    assert runs[:5] + runs[6:] == [1] * 199


def test_slow_runs_spread_over_every_worker(cluster_runner):
    """40 one-second runs on 4 worker threads: 10 s ideal, not batched together."""
    slots = cluster_runner._slots()
    n = 10 * slots

    @flow(task_runner=cluster_runner)
    def slow() -> tuple[float, list[Any]]:
        start = time.time()
        results = nap_where.map([1.0] * n).result()
        return time.time() - start, results

    makespan, results = slow()
    ideal = n * 1.0 / slots
    assert makespan <= 1.1 * ideal, f"makespan {makespan:.2f} s vs ideal {ideal:.2f} s"
    assert len({pid for pid, _, _ in results}) >= 2  # every worker process took some


_RELEASE_GRACE = 0.5  # seconds


def test_a_batch_whose_worker_dies_reruns_only_its_unsettled_runs(cluster_runner,
                                                                   tmp_path: Path):
    """A worker dies in the middle of a batched map: the runs it held (in its running
    batches, or done but not yet back in the driver) run again; a batched run already
    settled in the driver does not. (A run sent on its own keeps its result on the
    worker, and Dask recomputes it if that worker dies: Dask's own rule.)"""
    runner = cluster_runner
    warm_dir = tmp_path / "warm"
    warm_dir.mkdir()
    _warm(runner, kills_worker_once, str(warm_dir), -1)
    batched: set[int] = set()
    sizes = _count_batches(runner, batched)
    n, victim = 4000, 3500
    settled_at: dict[int, float] = {}
    try:
        @flow(task_runner=runner)
        def dying() -> list[Any]:
            futures = kills_worker_once.map(range(n), str(tmp_path), victim)
            for x, future in enumerate(futures):
                future.add_done_callback(lambda _, x=x: settled_at.setdefault(x, time.time()))
            return futures.result()

        result = dying()
    finally:
        del runner._launch_batch
    assert result == list(range(n))
    assert sizes and max(sizes) > 1, f"the map was not batched: {sizes}"
    runs = _runs(tmp_path, n)
    assert runs[victim] == 2  # killed its worker once, then completed
    died = float((tmp_path / "died").read_text())
    # settled in the driver before the death (by more than the few milliseconds Dask
    # takes to forget a batch the driver released: see docs/behaviour.md)
    before = [x for x in range(n) if settled_at[x] < died - _RELEASE_GRACE and x in batched]
    assert before, "nothing settled before the worker died"
    after_settled = [x for x in before if any(
        float(line.split()[1]) > settled_at[x]
        for line in (tmp_path / f"{x}.runs").read_text().splitlines())]
    assert not after_settled, "settled runs ran again: " + "; ".join(
        f"{x}: ran {(tmp_path / f'{x}.runs').read_text().split()[1::2]} settled "
        f"{settled_at[x]!r} died {died!r}" for x in after_settled[:3])
    again = [x for x in range(n) if runs[x] > 1]
    assert len(again) < n - len(before)  # not the whole rest of the map
    assert all(count >= 1 for count in runs)
