"""Flows: the decorator, parameter validation, final states, waiting for submitted work,
subflows, retries, timeouts, hooks and async flows."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback

import pytest

from fluvial import Flow, flow, get_run_context, task
from fluvial.context import FlowRunContext
from fluvial.exceptions import ParameterTypeError
from fluvial.runners import ThreadPoolTaskRunner
from fluvial.runs import FlowRun
from fluvial.states import State


@task
def double(x):
    return 2 * x


@task
def fails(message="task failed"):
    raise ValueError(message)


def _frames(exc: BaseException) -> list[str]:
    return [f.name for f in traceback.extract_tb(exc.__traceback__)]


# -- the decorator ---------------------------------------------------------------------


def test_bare_and_called_decorator():
    @flow
    def bare(x):
        return x + 1

    @flow(name="called-flow", version="2", description="says hi")
    def called():
        """Docstring that the description overrides."""
        return "hi"

    @flow()
    def empty_call():
        """The docstring."""
        return None

    assert isinstance(bare, Flow) and bare.name == "bare"
    assert (called.name, called.version, called.description) == ("called-flow", "2", "says hi")
    assert empty_call.description == "The docstring."
    assert bare(1) == 2
    assert called() == "hi"


def test_invalid_flow_options_are_clear_errors_naming_the_flow():
    def body():
        return None

    with pytest.raises(ValueError, match="checked.*retries"):
        flow(name="checked", retries=-1)(body)
    with pytest.raises(ValueError, match="checked.*timeout_seconds"):
        flow(name="checked", timeout_seconds=0)(body)
    with pytest.raises(TypeError, match="checked.*task_runner"):
        flow(name="checked", task_runner="threads")(body)


def test_flow_with_options_returns_a_copy():
    @flow(retries=1)
    def original():
        return "ran"

    copy = original.with_options(name="renamed", retries=3)
    assert copy is not original and isinstance(copy, Flow)
    assert (copy.name, copy.retries) == ("renamed", 3)
    assert (original.name, original.retries) == ("original", 1)
    assert copy() == "ran"
    with pytest.raises(TypeError, match="original.*bogus"):
        original.with_options(bogus=True)


# -- parameters -------------------------------------------------------------------------


def test_validate_parameters_coerces_by_type_hints():
    @flow
    def typed(n: int, ratio: float = 1.0):
        return n, type(n), ratio, type(ratio)

    assert typed("41") == (41, int, 1.0, float)
    assert typed(n="7", ratio="0.5") == (7, int, 0.5, float)


def test_invalid_parameter_is_a_clear_error_before_the_body_runs():
    ran = []

    @flow
    def typed(n: int):
        ran.append(n)
        return n

    with pytest.raises(ParameterTypeError) as info:
        typed("abc")
    assert "parameter 'n'" in str(info.value)
    assert "typed" in str(info.value)
    assert ran == []


def test_invalid_parameter_with_return_state_gives_a_failed_state():
    ran = []

    @flow
    def typed(n: int):
        ran.append(n)

    state = typed("abc", return_state=True)  # Prefect: a Failed state, not a raise
    assert state.is_failed()
    assert "Validation of flow parameters failed" in state.message
    with pytest.raises(ParameterTypeError, match="'n'"):
        state.result()
    assert ran == []


def test_a_run_refused_for_its_parameters_is_recorded_failed():
    from fluvial.store import queries

    @flow
    def typed_recorded(n: int, when: object = None):
        return n

    state = typed_recorded("abc", when=object(), return_state=True)
    with pytest.raises(ParameterTypeError):
        typed_recorded("xyz")
    runs = queries.list_flow_runs(flow_name="typed-recorded")
    assert len(runs) == 2  # both calls, neither ran, both in the record
    assert all(r.state_type == "FAILED" for r in runs)
    assert {r.id for r in runs} >= {state.run_id}
    refused = queries.get_flow_run(state.run_id)
    assert "Validation of flow parameters failed" in (refused.state_message or "")
    assert refused.parameters["n"] == "'abc'"  # what was given (the record keeps reprs)
    assert refused.parameters["when"].startswith("<object object")


def test_validate_parameters_false_passes_values_through():
    @flow(validate_parameters=False)
    def untyped(n: int):
        return n

    assert untyped("41") == "41"
    assert untyped("abc") == "abc"


def test_missing_argument_is_a_clear_error():
    ran = []

    @flow
    def needs(first, second):
        ran.append(1)

    with pytest.raises((TypeError, ValueError)) as info:
        needs(1)
    assert "second" in str(info.value) and "needs" in str(info.value)
    assert ran == []


def test_extra_argument_is_a_clear_error():
    ran = []

    @flow
    def takes_one(first):
        ran.append(1)

    with pytest.raises((TypeError, ValueError)) as info:
        takes_one(1, extra=2)
    assert "extra" in str(info.value) and "takes_one" in str(info.value)
    with pytest.raises((TypeError, ValueError)):
        takes_one(1, 2)
    assert ran == []


def test_flow_run_parameters_are_recorded():
    @flow
    def params(a: int, b="x"):
        ctx = get_run_context()
        return dict(ctx.flow_run.parameters)

    assert params("3") == {"a": 3, "b": "x"}


# -- final states ---------------------------------------------------------------------------


def test_return_state_gives_the_completed_state():
    @flow
    def returns_value():
        return {"answer": 42}

    state = returns_value(return_state=True)
    assert isinstance(state, State)
    assert state.is_completed() and state.name == "Completed"
    assert state.result() == {"answer": 42}


def raise_from_the_flow_body():
    raise KeyError("from the body")


def test_a_raising_flow_ends_failed_and_result_reraises():
    @flow
    def raises():
        raise_from_the_flow_body()

    state = raises(return_state=True)
    assert state.is_failed()
    with pytest.raises(KeyError, match="from the body") as info:
        state.result()
    assert "raise_from_the_flow_body" in _frames(info.value)
    with pytest.raises(KeyError):
        raises()


def test_returned_futures_are_handed_back_as_their_final_states():
    @flow
    def returns_futures():
        single = double.submit(1)
        many = [double.submit(i) for i in range(3)]
        return single, many, {"k": double.submit(10)}

    single, many, mapping = returns_futures()  # Prefect 3.8: states, not values
    assert isinstance(single, State) and single.result() == 2
    assert [s.result() for s in many] == [0, 2, 4]
    assert mapping["k"].is_completed() and mapping["k"].result() == 20


def test_a_returned_run_state_is_handed_back_as_that_state():
    @flow
    def returns_state():
        return double(4, return_state=True)

    state = returns_state(return_state=True)
    assert state.is_completed() and state.message == "All states completed."
    inner = returns_state()
    assert isinstance(inner, State) and inner.result() == 8


def test_a_returned_failed_future_fails_the_flow():
    @flow
    def returns_failed_future():
        return [double.submit(1), fails.submit("returned failure")]

    state = returns_failed_future(return_state=True)
    assert state.is_failed()
    assert state.message == "1/2 states failed."
    with pytest.raises(ValueError, match="returned failure"):
        state.result()
    # the caller gets the final states, the failed one among them, without a raise
    ok, failed = returns_failed_future()
    assert ok.is_completed() and failed.is_failed()


def test_a_returned_failed_state_fails_the_flow():
    @flow
    def returns_failed_state():
        return fails("state failure", return_state=True)

    state = returns_failed_state(return_state=True)
    assert state.is_failed()
    inner = state.result(raise_on_failure=False)
    assert isinstance(inner, State) and inner.is_failed()  # the task run's state is the data
    with pytest.raises(ValueError, match="state failure"):
        returns_failed_state()


def test_an_unobserved_failed_submission_completes_the_flow_with_a_warning(caplog):
    @task
    def ignored_failure():
        raise ValueError("nobody looked")

    @flow
    def drops_failure():
        ignored_failure.submit()
        return "looks fine"

    with caplog.at_level(logging.WARNING, logger="fluvial.flow_runs"):
        state = drops_failure(return_state=True)
    assert state.is_completed() and state.result() == "looks fine"  # as in Prefect
    assert "ignored_failure" in state.message
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "ignored_failure-" in warnings[0].getMessage()
    assert "nobody looked" in warnings[0].getMessage()


def test_a_flow_that_waited_on_a_failed_future_and_returned_normally_completes():
    @flow
    def waits_on_failure():
        future = fails.submit()
        future.wait()
        return "handled"

    state = waits_on_failure(return_state=True)
    assert state.is_completed() and state.result() == "handled"


def test_a_flow_that_read_a_failed_result_without_raising_completes():
    @flow
    def reads_failure():
        error = fails.submit("expected").result(raise_on_failure=False)
        return type(error).__name__

    state = reads_failure(return_state=True)
    assert state.is_completed() and state.result() == "ValueError"


def test_every_submitted_task_finishes_before_the_flow_returns():
    finished = []

    @task
    def slow_append(i):
        time.sleep(0.2)
        finished.append(i)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def fire_and_forget():
        for i in range(4):
            slow_append.submit(i)
        return "returned early"

    assert fire_and_forget() == "returned early"
    assert sorted(finished) == [0, 1, 2, 3]


def test_mapped_tasks_finish_before_the_flow_returns():
    finished = []

    @task
    def slow_append(i):
        time.sleep(0.05)
        finished.append(i)

    @flow
    def maps():
        slow_append.map(range(10))

    maps()
    assert sorted(finished) == list(range(10))


# -- subflows ----------------------------------------------------------------------------------


def test_a_subflow_gets_its_own_flow_run_and_the_parent_context_is_restored():
    @flow
    def child(x):
        ctx = get_run_context()
        assert isinstance(ctx, FlowRunContext)
        return ctx.flow_run.id, ctx.flow.name, double(x)

    @flow
    def parent():
        parent_id = get_run_context().flow_run.id
        child_id, child_name, value = child(5)
        after_id = get_run_context().flow_run.id
        return parent_id, child_id, child_name, value, after_id

    parent_id, child_id, child_name, value, after_id = parent()
    assert child_id != parent_id
    assert child_name == "child"
    assert value == 10
    assert after_id == parent_id


def test_a_subflow_called_from_a_task_records_the_parent_task_run():
    @flow
    def child():
        return FlowRunContext.get().flow_run.parent_task_run_id

    @task
    def launches_child():
        return get_run_context().task_run.id, child()

    @flow
    def parent():
        return launches_child()

    task_run_id, parent_task_run_id = parent()
    assert parent_task_run_id == task_run_id


def test_inside_a_subflow_called_from_a_task_the_run_context_is_the_subflow():
    @flow
    def child():
        ctx = get_run_context()
        return type(ctx).__name__, getattr(getattr(ctx, "flow", None), "name", None)

    @task
    def launches_child():
        return child()

    @flow
    def parent():
        return launches_child()

    assert parent() == ("FlowRunContext", "child")


def test_a_failing_subflow_fails_the_parent_with_its_exception():
    @flow
    def child():
        raise RuntimeError("child broke")

    @flow
    def parent():
        child()

    state = parent(return_state=True)
    assert state.is_failed()
    with pytest.raises(RuntimeError, match="child broke"):
        state.result()


def test_a_subflow_sharing_the_parent_runner_runs_its_tasks():
    runner = ThreadPoolTaskRunner(max_workers=2)

    @flow(task_runner=runner)
    def child(n):
        return sum(double.map(range(n)).result())

    @flow(task_runner=runner)
    def parent():
        return child(4), double.submit(1).result()

    assert parent() == (12, 2)


# -- retries, timeouts, hooks --------------------------------------------------------------------


def test_flow_retries_rerun_the_body():
    runs = []

    @flow(retries=2)
    def flaky():
        runs.append(get_run_context().flow_run.run_count)
        if len(runs) < 3:
            raise ConnectionError("flaky")
        return "third time"

    assert flaky() == "third time"
    assert runs == [1, 2, 3]


def test_flow_retries_exhausted_end_failed():
    runs = []

    @flow(retries=1)
    def always():
        runs.append(1)
        raise ConnectionError(f"attempt {len(runs)}")

    state = always(return_state=True)
    assert state.is_failed()
    assert len(runs) == 2
    with pytest.raises(ConnectionError, match="attempt 2"):
        state.result()


def test_flow_timeout_ends_timed_out():
    @flow(timeout_seconds=0.2)
    def too_slow():
        time.sleep(3)
        return "never"

    started = time.monotonic()
    state = too_slow(return_state=True)
    assert state.name == "TimedOut"
    assert state.is_failed()
    assert time.monotonic() - started < 2.0
    with pytest.raises(TimeoutError):
        state.result()


def test_flow_timeout_interrupts_a_busy_loop():
    @flow(timeout_seconds=0.2)
    def spins():
        while True:
            pass

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        spins()
    assert time.monotonic() - started < 2.0


def test_flow_hooks_called_once_with_flow_flow_run_and_state():
    completions, failures = [], []

    @flow(on_completion=[lambda f, fr, s: completions.append((f, fr, s))],
          on_failure=[lambda f, fr, s: failures.append((f, fr, s))])
    def succeeds():
        return 1

    @flow(retries=1, on_completion=[lambda f, fr, s: completions.append((f, fr, s))],
          on_failure=[lambda f, fr, s: failures.append((f, fr, s))])
    def fails_flow():
        raise ValueError("flow failed")

    succeeds()
    assert len(completions) == 1 and failures == []
    flow_obj, flow_run, state = completions[0]
    assert flow_obj is succeeds
    assert isinstance(flow_run, FlowRun)
    assert state.is_completed()

    fails_flow(return_state=True)
    assert len(completions) == 1
    assert len(failures) == 1  # once, not once per attempt
    assert failures[0][2].is_failed()


def test_a_raising_flow_hook_does_not_change_the_state(caplog):
    def broken(f, fr, s):
        raise RuntimeError("flow hook exploded")

    @flow(on_completion=[broken])
    def fine():
        return "fine"

    assert fine() == "fine"
    assert any("broken" in r.getMessage() for r in caplog.records)


# -- async flows -----------------------------------------------------------------------------------


def test_async_flow_with_awaited_async_tasks():
    @task
    async def async_double(x):
        await asyncio.sleep(0.01)
        return 2 * x

    @flow
    async def async_flow(n: int):
        first = await async_double(n)
        both = await asyncio.gather(async_double(first), async_double(1))
        return first, list(both), double(3)

    assert asyncio.run(async_flow("5")) == (10, [20, 2], 6)


def test_async_flow_return_state_and_failure():
    @flow
    async def async_fails():
        await asyncio.sleep(0)
        raise ValueError("async failure")

    state = asyncio.run(async_fails(return_state=True))
    assert state.is_failed()
    with pytest.raises(ValueError, match="async failure"):
        asyncio.run(async_fails())


def test_async_flow_timeout():
    @flow(timeout_seconds=0.2)
    async def async_slow():
        await asyncio.sleep(5)

    started = time.monotonic()
    state = asyncio.run(async_slow(return_state=True))
    assert state.name == "TimedOut"
    assert time.monotonic() - started < 2.0


def test_async_flow_submits_sync_tasks():
    @flow
    async def submits():
        futures = double.map([1, 2, 3])
        return futures.result()

    assert asyncio.run(submits()) == [2, 4, 6]


def test_flows_in_different_threads_have_separate_contexts():
    results = {}

    @flow
    def named(label):
        time.sleep(0.05)
        return label, get_run_context().flow_run.parameters["label"]

    threads = [threading.Thread(target=lambda i=i: results.__setitem__(i, named(f"L{i}")))
               for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert results == {i: (f"L{i}", f"L{i}") for i in range(3)}


def test_a_timed_out_flow_does_not_wait_for_its_running_tasks():
    @task
    def slow() -> int:
        time.sleep(4)
        return 1

    @flow(timeout_seconds=0.3)
    def hurried():
        slow.submit()
        time.sleep(10)

    start = time.monotonic()
    state = hurried(return_state=True)
    assert state.name == "TimedOut"
    assert time.monotonic() - start < 3, "the flow waited for a task after its deadline"


def test_an_async_flow_with_bad_parameters_hands_back_an_awaitable_failed_state():
    @flow
    async def typed(n: int):
        return n

    async def main():
        state = await typed("abc", return_state=True)
        return state, await state.result(raise_on_failure=False)

    state, error = asyncio.run(main())
    assert state.is_failed() and isinstance(error, ParameterTypeError)
