"""``fluvial.context.with_context(fn)``: the run context inside pools a task or flow
starts itself — threads and ``multiprocessing`` (issue 9, item 7)."""

from __future__ import annotations

import logging
import multiprocessing
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from fluvial import flow, get_run_logger, tags, task
from fluvial.context import get_run_context, with_context
from fluvial.exceptions import MissingContextError
from fluvial.runtime import flow_run as rt_flow_run
from fluvial.runtime import task_run as rt_task_run


def identify(i: int) -> dict[str, Any]:
    """Runs in a pool: what the run context says, and a log line through the run logger."""
    logger = get_run_logger()
    logger.info("item %d from pid %d", i, os.getpid())
    ctx = get_run_context()
    return {"i": i, "pid": os.getpid(), "task_run_id": logger.extra.get("task_run_id"),
            "flow_run_id": rt_flow_run.id, "runtime_task_id": rt_task_run.id,
            "task_name": getattr(getattr(ctx, "task", None), "name", None),
            "run_count": rt_task_run.run_count, "flow_name": rt_flow_run.flow_name,
            "parameters": rt_flow_run.parameters}


@task
def fan_out_in_threads(n: int) -> tuple[str, list[dict[str, Any]]]:
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(with_context(identify), range(n)))
    return str(get_run_context().task_run.id), results


def test_thread_pool_in_a_task_sees_the_task_run(runner):
    @flow(task_runner=runner)
    def threads_flow() -> tuple[str | None, Any]:
        return rt_flow_run.id, fan_out_in_threads.submit(3).result()

    flow_id, (task_id, results) = threads_flow()
    assert [r["i"] for r in results] == [0, 1, 2]
    for r in results:
        assert r["task_run_id"] == task_id == r["runtime_task_id"]
        assert r["flow_run_id"] == flow_id
        assert r["task_name"] == "fan_out_in_threads" and r["run_count"] == 1


def test_without_with_context_a_pool_thread_has_no_run():
    @task
    def bare() -> None:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(get_run_logger).result()

    @flow
    def bare_flow() -> None:
        bare()

    with pytest.raises(MissingContextError):
        bare_flow()


@task
def fan_out_in_processes(n: int, method: str) -> tuple[str, list[dict[str, Any]]]:
    with multiprocessing.get_context(method).Pool(2) as pool:
        results = pool.map(with_context(identify), range(n))
    return str(get_run_context().task_run.id), results


@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_multiprocessing_pool_map_in_a_task_sees_the_task_run(method):
    @flow(name="mp-flow")
    def mp_flow(n: int = 4) -> tuple[str | None, Any]:
        return rt_flow_run.id, fan_out_in_processes(n, method)

    flow_id, (task_id, results) = mp_flow()
    assert [r["i"] for r in results] == [0, 1, 2, 3]
    assert all(r["pid"] != os.getpid() for r in results)  # really other processes
    for r in results:
        assert r["task_run_id"] == task_id == r["runtime_task_id"]
        assert r["flow_run_id"] == flow_id and r["flow_name"] == "mp-flow"
        assert r["task_name"] == "fan_out_in_processes" and r["run_count"] == 1
        assert r["parameters"] == {"n": 4}


def test_multiprocessing_pool_in_a_flow_body_sees_the_flow_run():
    @flow(name="body")
    def body() -> tuple[str | None, list[dict[str, Any]]]:
        with multiprocessing.get_context("spawn").Pool(1) as pool:
            return rt_flow_run.id, pool.map(with_context(identify), [7])

    flow_id, [result] = body()
    assert result["flow_run_id"] == flow_id and result["task_run_id"] is None
    assert result["flow_name"] == "body" and result["runtime_task_id"] is None


def test_logs_from_a_thread_pool_carry_the_run(caplog):
    @task(task_run_name="logging-task")
    def logs() -> None:
        with ThreadPoolExecutor(1) as pool:
            pool.submit(with_context(lambda: get_run_logger().info("from the pool"))).result()

    @flow
    def logged() -> None:
        logs()

    with caplog.at_level(logging.INFO, logger="fluvial"):
        logged()
    [record] = [r for r in caplog.records if r.getMessage().endswith("from the pool")]
    assert record.task_run_name == "logging-task"  # type: ignore[attr-defined]


def active_tags() -> list[str]:
    from fluvial.context import current_tags

    return sorted(current_tags())


def test_tags_travel_and_the_wrapper_pickles_plainly():
    @flow
    def tagged() -> bytes:
        with tags("a", "b"):
            return pickle.dumps(with_context(active_tags))

    wrapper = pickle.loads(tagged())
    assert wrapper() == ["a", "b"]
    assert active_tags() == []
    with pytest.raises(TypeError, match="needs a callable"):
        with_context(42)  # type: ignore[arg-type]


def test_outside_a_run_the_wrapper_is_transparent():
    assert with_context(lambda x: x + 1)(1) == 2
    with pytest.raises(MissingContextError):
        with_context(get_run_logger)()
