"""Data dependencies, ``wait_for`` and upstream failure, the same on every runner."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import fluvial
from fluvial import StateType, flow, task


@task
def inc(x: int) -> int:
    return x + 1


@task
def total(values) -> int:
    if isinstance(values, dict):
        values = list(values.values())
    return sum(values)


@task
def fail(message: str) -> int:
    raise ValueError(message)


@dataclasses.dataclass
class Pair:
    left: object
    right: object


@task
def pair_sum(pair: Pair) -> int:
    return pair.left + pair.right


def test_chain_of_futures(runner):
    @flow(task_runner=runner)
    def chain():
        future = inc.submit(0)
        for _ in range(30):
            future = inc.submit(future)
        return future.result()

    assert chain() == 31


def test_futures_inside_containers_are_resolved(runner):
    @flow(task_runner=runner)
    def containers():
        a, b = inc.submit(1), inc.submit(2)
        return (
            total.submit([a, b]).result(),
            total.submit((a, 10)).result(),
            total.submit({"x": a, "y": b}).result(),
            total.submit({a, b}).result(),
            pair_sum.submit(Pair(a, b)).result(),
        )

    assert containers() == (5, 12, 5, 5, 5)


def test_a_maps_futures_passed_to_a_task_are_its_results(runner):
    @flow(task_runner=runner)
    def reduce_map():
        return total.submit(inc.map(range(10))).result()

    assert reduce_map() == sum(range(1, 11))


def test_wait_for_orders_without_data(runner, tmp_path: Path):
    log = tmp_path / "order.txt"

    @task
    def write(tag: str, path: str) -> str:
        with open(path, "a") as fh:
            fh.write(tag + "\n")
        return tag

    @task
    def slow_write(tag: str, path: str) -> str:
        import time

        time.sleep(0.3)
        return write.fn(tag, path)

    @flow(task_runner=runner)
    def ordered():
        first = slow_write.submit("first", str(log))
        second = write.submit("second", str(log), wait_for=[first])
        return second.result()

    assert ordered() == "second"
    assert log.read_text().split() == ["first", "second"]


def test_upstream_failure_makes_downstream_not_ready(runner, tmp_path: Path):
    marker = tmp_path / "ran"

    @task
    def downstream(x: int, path: str) -> int:
        open(path, "w").close()
        return x

    @flow(task_runner=runner)
    def broken():
        bad = fail.submit("boom")
        after = downstream.submit(bad, str(marker))
        return after

    state = broken(return_state=True)
    assert state.is_failed()
    returned = state.result(raise_on_failure=False)  # the returned run's NotReady state
    assert returned.name == "NotReady" and "'fail'" in returned.message
    assert not marker.exists(), "a task whose upstream failed must not run"


def test_not_ready_state_names_the_upstream(runner):
    @flow(task_runner=runner)
    def broken():
        bad = fail.submit("boom")
        after = inc.submit(bad)
        ordered = inc.submit(1, wait_for=[bad])
        fluvial.wait([after, ordered, bad])
        # a flow returning failed states fails, so hand back what the states say
        return [(s.type, s.name, s.message) for s in (after.state, ordered.state, bad.state)]

    after, ordered, bad = broken()
    assert bad[:2] == (StateType.FAILED, "Failed")
    for state_type, name, message in (after, ordered):
        assert state_type is StateType.FAILED
        assert name == "NotReady"
        assert "'fail'" in message
    assert "boom" in after[2]


def test_not_ready_propagates_down_a_chain(runner):
    @flow(task_runner=runner)
    def chain():
        future = fail.submit("root cause")
        for _ in range(5):
            future = inc.submit(future)
        future.wait()
        return future.state.name, future.state.message

    name, message = chain()
    assert name == "NotReady"
    assert "'inc'" in message


def test_returning_a_failed_future_fails_the_flow(runner):
    @flow(task_runner=runner)
    def returns_failure():
        return fail.submit("returned")

    state = returns_failure(return_state=True)
    assert state.is_failed()
    try:
        state.result()
    except ValueError as exc:
        assert "returned" in str(exc)
    else:  # pragma: no cover - the assertion above must hold
        raise AssertionError("result() should re-raise the task's exception")
