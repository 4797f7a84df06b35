"""Futures and dependency resolution on the thread runner."""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
import uuid
from collections.abc import Iterator

import pytest

import fluvial
from fluvial import Future, FutureList, flow, quote, task
from fluvial.futures import PrefectFuture, as_completed, wait
from fluvial.runners import ThreadPoolTaskRunner


@task
def gated(event: threading.Event, value):
    if not event.wait(10):
        raise RuntimeError("gate never opened")
    return value


@task
def identity(x):
    return x


@task
def fails(message="upstream broke"):
    raise ValueError(message)


@pytest.fixture
def gates() -> Iterator[list[threading.Event]]:
    """Events that gate tasks; all opened at teardown so no worker stays blocked."""
    events = [threading.Event() for _ in range(4)]
    yield events
    for event in events:
        event.set()


# -- one future --------------------------------------------------------------------------------


def test_result_with_timeout_raises_timeout_error_when_not_done(gates):
    future = gated.submit(gates[0], "v")
    with pytest.raises(TimeoutError):
        future.result(timeout=0.05)
    assert not future.done()
    gates[0].set()
    assert future.result(timeout=10) == "v"


def test_done_state_and_wait(gates):
    future = gated.submit(gates[0], 7)
    assert future.done() is False
    pending = future.state
    assert pending.is_pending() and pending.name == "Pending"
    future.wait(timeout=0.05)
    assert not future.done()
    gates[0].set()
    future.wait()
    assert future.done() is True
    assert future.state.is_completed()
    assert future.state.result() == 7


def test_failed_future_result_and_state():
    future = fails.submit("direct failure")
    future.wait(10)
    assert future.done()
    assert future.state.is_failed()
    with pytest.raises(ValueError, match="direct failure"):
        future.result()
    assert isinstance(future.result(raise_on_failure=False), ValueError)


def test_add_done_callback_called_once_and_also_after_completion(gates):
    calls: list[Future] = []
    future = gated.submit(gates[0], 1)
    future.add_done_callback(calls.append)
    assert calls == []
    gates[0].set()
    future.wait(10)
    deadline = time.monotonic() + 5
    while not calls and time.monotonic() < deadline:  # the callback runs on the worker
        time.sleep(0.01)
    assert calls == [future]

    late: list[Future] = []
    future.add_done_callback(late.append)
    assert late == [future]  # called at once when already done
    assert calls == [future]  # the first callback was not called again


def test_task_run_id_is_a_uuid_and_unique():
    first, second = identity.submit(1), identity.submit(2)
    assert isinstance(first.task_run_id, uuid.UUID)
    assert first.task_run_id != second.task_run_id
    assert (first.result(), second.result()) == (1, 2)


def test_prefect_future_is_an_alias_of_future():
    assert PrefectFuture is Future
    assert fluvial.PrefectFuture is Future
    assert isinstance(identity.submit(1), PrefectFuture)


def test_submit_with_return_state_gives_the_final_state():
    state = identity.submit(5, return_state=True)
    assert state.is_completed() and state.result() == 5


# -- many futures --------------------------------------------------------------------------------


def test_future_list_result_and_wait():
    futures = identity.map([1, 2, 3])
    assert isinstance(futures, FutureList)
    assert futures.result() == [1, 2, 3]
    futures.wait()
    assert all(f.done() for f in futures)


def test_future_list_result_times_out(gates):
    futures = FutureList([gated.submit(gates[0], 1), identity.submit(2)])
    with pytest.raises(TimeoutError):
        futures.result(timeout=0.1)
    gates[0].set()
    assert futures.result(timeout=10) == [1, 2]


def test_future_list_result_raises_or_returns_failures():
    futures = FutureList([identity.submit(1), fails.submit("in a list")])
    with pytest.raises(ValueError, match="in a list"):
        futures.result()
    values = futures.result(raise_on_failure=False)
    assert values[0] == 1 and isinstance(values[1], ValueError)


def test_wait_returns_done_and_not_done(gates):
    blocked = gated.submit(gates[0], "slow")
    quick = [identity.submit(i) for i in range(3)]
    for f in quick:
        f.wait(10)
    done, not_done = wait([blocked, *quick], timeout=0.1)
    assert done == set(quick)
    assert not_done == {blocked}
    gates[0].set()
    done, not_done = fluvial.wait([blocked, *quick])
    assert done == {blocked, *quick}
    assert not_done == set()


def test_as_completed_yields_in_completion_order(gates):
    futures = [gated.submit(gates[i], i) for i in range(3)]
    iterator = as_completed(futures, timeout=10)
    order = []
    for index in (2, 0, 1):
        gates[index].set()
        order.append(next(iterator).result())
    assert order == [2, 0, 1]
    with pytest.raises(StopIteration):
        next(iterator)


def test_as_completed_raises_timeout_error(gates):
    quick = identity.submit("quick")
    quick.wait(10)
    blocked = gated.submit(gates[0], "blocked")
    seen = []
    with pytest.raises(TimeoutError):
        for future in fluvial.as_completed([quick, blocked], timeout=0.2):
            seen.append(future)
    assert seen == [quick]


# -- dependency resolution -------------------------------------------------------------------------


@dataclasses.dataclass
class Box:
    left: object
    right: object = None


def test_futures_nested_in_containers_are_replaced_by_results():
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def nested():
        a, b = identity.submit(1), identity.submit("b")
        received = identity.submit({
            "list": [a, 2, [b]],
            "tuple": (a, b),
            "set": {a, 3},
            "frozenset": frozenset({b}),
            "dict": {"x": a, "y": {"z": b}},
            "dataclass": Box(a, Box(b)),
        }).result()
        top = identity.submit(a).result()
        return received, top

    received, top = nested()
    assert top == 1
    assert received == {
        "list": [1, 2, ["b"]],
        "tuple": (1, "b"),
        "set": {1, 3},
        "frozenset": frozenset({"b"}),
        "dict": {"x": 1, "y": {"z": "b"}},
        "dataclass": Box(1, Box("b")),
    }
    assert isinstance(received["tuple"], tuple)
    assert isinstance(received["dataclass"], Box)


def test_keyword_arguments_are_resolved_too():
    @task
    def combine(a, *, b):
        return a + b

    @flow
    def kwargs_flow():
        return combine.submit(identity.submit(1), b=identity.submit(2)).result()

    assert kwargs_flow() == 3


def test_quote_passes_its_contents_untouched():
    @task
    def inspect_argument(value):
        return [type(item).__name__ for item in value], value

    @flow
    def quoting():
        upstream = identity.submit(1)
        upstream.wait()
        names, value = inspect_argument.submit(quote([upstream, 2])).result()
        return names, value[0] is upstream

    names, same_object = quoting()
    assert names == ["Future", "int"]
    assert same_object


def test_wait_for_orders_without_passing_data():
    order = []

    @task
    def first():
        time.sleep(0.2)
        order.append("first")
        return "data"

    @task
    def second(*args):
        order.append("second")
        return args

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def ordered():
        upstream = first.submit()
        return second.submit(wait_for=[upstream]).result()

    assert ordered() == ()
    assert order == ["first", "second"]


def test_upstream_failure_leaves_the_downstream_not_ready_and_never_run():
    ran = []
    captured = {}

    @task
    def downstream(x):
        ran.append(x)
        return x

    @flow
    def propagates():
        bad = fails.submit()
        futures = {
            "data": downstream.submit(bad),
            "nested": downstream.submit([{"deep": bad}]),
            "second-hop": None,
        }
        futures["second-hop"] = downstream.submit(futures["data"])
        for name, future in futures.items():
            future.wait()
            captured[name] = future.state
        bad.wait()

    assert propagates(return_state=True).is_completed()
    assert ran == []
    for name in ("data", "nested"):
        state = captured[name]
        assert state.name == "NotReady", name
        assert state.is_failed()
        assert "'fails'" in state.message
        with pytest.raises(Exception, match="fails"):
            state.result()
    assert captured["second-hop"].name == "NotReady"
    assert "'downstream'" in captured["second-hop"].message


def test_an_unobserved_upstream_failure_does_not_fail_the_flow(caplog):
    @task
    def downstream(x):
        return x

    @flow
    def drops():
        downstream.submit(fails.submit("dropped"))

    with caplog.at_level(logging.WARNING, logger="fluvial.flow_runs"):
        state = drops(return_state=True)
    assert state.is_completed()  # Prefect completes it; the warning names the run
    message = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert "downstream-" in message and "dropped" in message


def test_wait_for_upstream_failure_is_not_ready():
    ran = []

    @task
    def after():
        ran.append(1)

    seen = {}

    @flow
    def waits():
        bad = fails.submit()
        future = after.submit(wait_for=[bad])
        future.wait()
        seen["state"] = future.state
        bad.wait()

    waits()
    assert seen["state"].name == "NotReady"
    assert "fails" in seen["state"].message
    with pytest.raises(Exception, match="fails"):
        seen["state"].result()
    assert ran == []


def test_resolve_futures_to_states_and_results():
    from fluvial.futures import (
        PrefectFutureList,
        resolve_futures_to_results,
        resolve_futures_to_states,
    )
    from fluvial.states import State

    assert PrefectFutureList is FutureList

    @task
    def value(x):
        return x

    @flow
    def resolves():
        futures = {"a": value.submit(1), "many": [value.submit(2), (value.submit(3),)]}
        states = resolve_futures_to_states(futures)
        results = resolve_futures_to_results(futures)
        mapped = resolve_futures_to_states(value.map([4, 5]))
        return states, results, mapped

    states, results, mapped = resolves()
    assert isinstance(states["a"], State) and states["a"].result() == 1
    assert isinstance(states["many"][1], tuple) and states["many"][1][0].result() == 3
    assert results == {"a": 1, "many": [2, (3,)]}
    assert type(mapped) is list and [s.result() for s in mapped] == [4, 5]
    assert resolve_futures_to_results("plain") == "plain"


def test_resolve_futures_to_results_raises_a_failure():
    from fluvial.futures import resolve_futures_to_results

    @flow
    def raises():
        return resolve_futures_to_results([fails.submit("resolved failure")])

    with pytest.raises(ValueError, match="resolved failure"):
        raises()
