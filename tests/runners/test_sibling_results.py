"""Remote results as users fetch them: on Dask and Ray, asking one future of a
``FutureList`` for its result fetches the completed siblings' results in the same
request, so ``[f.result() for f in futures]`` costs what ``futures.result()`` does.

The results of batched runs (independent runs of a fast task) come back with their
batch and need no request at all; results that stay in the cluster are those of runs
sent one by one — here, runs with an upstream future (``unmapped(base)``)."""

from __future__ import annotations

from typing import Any

import pytest

from fluvial import flow, task, unmapped
from fluvial.futures import FutureList


@task
def double(x: int) -> int:
    return 2 * x


@task
def fail_on_three(x: int, base: int) -> int:
    if x == 3:
        raise ValueError("three")
    return x + base


@task
def plus(x: int, base: int) -> int:
    return x + base


def _counting(runner: Any) -> list[int]:
    """Record the size of every result request the runner makes."""
    calls: list[int] = []
    original = runner._gather_states

    def gather(futures: list[Any]) -> Any:
        calls.append(len(futures))
        return original(futures)

    runner._gather_states = gather
    return calls


@pytest.mark.parametrize("kind", ["dask", "ray"])
def test_one_result_fetches_the_completed_siblings(kind, make_runner):
    with make_runner(kind) as runner:
        calls = _counting(runner)

        @flow(task_runner=runner)
        def per_future() -> list[int]:
            base = double.submit(0)
            futures = plus.map(range(40), unmapped(base))
            futures.wait()
            return [f.result() for f in futures]

        assert per_future() == list(range(40))
    assert calls == [40]  # one request for all forty


@pytest.mark.parametrize("kind", ["dask", "ray"])
def test_siblings_fetch_skips_failed_and_pending_runs(kind, make_runner):
    with make_runner(kind) as runner:
        calls = _counting(runner)

        @flow(task_runner=runner)
        def mixed() -> tuple[list[Any], int]:
            base = double.submit(0)
            futures = fail_on_three.map(range(6), unmapped(base))
            futures.wait()
            values = [f.result(raise_on_failure=False) for f in futures]
            more = FutureList(plus.map(range(3), unmapped(base)))  # a user's list groups too
            return values, sum(f.result() for f in more)

        values, total = mixed()
    assert values[:3] == [0, 1, 2] and values[4:] == [4, 5]
    assert isinstance(values[3], ValueError) and total == 3
    assert calls[0] == 5  # the five completed runs, the failed one has nothing to fetch


def test_results_in_order_without_waiting_first(cluster_runner):
    @flow(task_runner=cluster_runner)
    def eager() -> list[int]:
        futures = double.map(range(200))
        return [f.result() for f in futures]

    assert eager() == [2 * x for x in range(200)]


@pytest.fixture(params=["dask", "ray"])
def cluster_runner(request, session_runner):
    return session_runner(request.param)
