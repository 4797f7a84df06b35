"""A flow's final state and what its caller gets back follow Prefect 3's rules, the same
on every runner (returned futures are resolved wherever their runs ran)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from fluvial import flow, task
from fluvial.states import Completed, Failed, State


@task
def ok(x: int) -> int:
    return x


@task
def boom(message: str = "boom") -> None:
    raise ValueError(message)


@task
def touch(path: str) -> str:
    import time

    time.sleep(0.3)
    Path(path).write_text("done")
    return path


def test_an_exception_in_the_flow_fails_it(runner):
    @flow(task_runner=runner)
    def raises():
        ok.submit(1).wait()
        raise KeyError("flow body")

    state = raises(return_state=True)
    assert state.is_failed()
    with pytest.raises(KeyError, match="flow body"):
        raises()


def test_a_returned_state_made_by_hand_is_final_whatever_else_happened(runner):
    @flow(task_runner=runner)
    def overrides():
        boom.submit().wait()
        return Completed(message="all good, really", data="payload")

    state = overrides(return_state=True)
    assert state.is_completed() and state.message == "all good, really"
    assert overrides() == "payload"  # the caller gets its data

    @flow(task_runner=runner)
    def gives_up():
        ok.submit(1).wait()
        return Failed(message="gave up")

    state = gives_up(return_state=True)
    assert state.is_failed() and state.message == "gave up"
    with pytest.raises(Exception, match="gave up"):
        gives_up()


def test_returned_futures_are_resolved_and_any_failure_fails_the_flow(runner):
    @flow(task_runner=runner)
    def one_good():
        return ok.submit(3)

    @flow(task_runner=runner)
    def all_futures():
        return [ok.submit(1), boom.submit("second failed")]

    @flow(task_runner=runner)
    def mapped():
        return ok.map([1, 2, 3])

    state = one_good(return_state=True)
    assert state.is_completed()
    handed_back = one_good()
    assert isinstance(handed_back, State) and handed_back.result() == 3  # a state, not 3

    state = all_futures(return_state=True)
    assert state.is_failed() and state.message == "1/2 states failed."
    with pytest.raises(ValueError, match="second failed"):
        state.result()
    first, second = all_futures()
    assert first.result() == 1 and second.is_failed()

    states = mapped()
    assert [s.result() for s in states] == [1, 2, 3]


def test_values_mixed_with_states_complete_the_flow(runner):
    @flow(task_runner=runner)
    def mixed():
        future = boom.submit("inside a tuple")
        future.wait()
        return "bar", future.state

    @flow(task_runner=runner)
    def in_a_dict():
        return {"failed": boom(return_state=True)}

    state = mixed(return_state=True)
    assert state.is_completed()
    value, inner = state.result()
    assert value == "bar" and inner.is_failed()
    assert in_a_dict(return_state=True).is_completed()  # a dict is not a state iterable
    assert in_a_dict()["failed"].is_failed()


def test_an_unobserved_failed_task_run_completes_the_flow_with_a_warning(runner, caplog):
    @flow(task_runner=runner)
    def drops():
        boom.submit("dropped one")
        boom.submit("dropped two")
        return None

    with caplog.at_level(logging.WARNING, logger="fluvial.flow_runs"):
        state = drops(return_state=True)
    assert state.is_completed()
    assert "2 task run(s) failed unobserved" in state.message
    warning = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    assert warning.count("boom-") == 2
    assert "dropped one" in warning and "dropped two" in warning


def test_an_unobserved_failure_stays_failed_in_the_run_record(runner):
    from fluvial.store import get_recorder, queries

    @flow(task_runner=runner)
    def drops():
        boom.submit("kept in the record")

    state = drops(return_state=True)
    assert state.is_completed()
    get_recorder().flush()
    runs = queries.task_runs(state.run_id)
    assert [r.state_type for r in runs] == ["FAILED"]


def test_every_submitted_task_run_is_waited_for(runner, tmp_path):
    @flow(task_runner=runner)
    def fire_and_forget():
        for i in range(3):
            touch.submit(str(tmp_path / f"f{i}"))
        return "early"

    assert fire_and_forget() == "early"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f0", "f1", "f2"]


def test_an_async_flow_hands_back_a_state_whose_result_is_awaitable(runner):
    @flow(task_runner=runner)
    async def async_flow():
        return "hello"

    @flow(task_runner=runner)
    async def async_fails():
        raise ValueError("oh no")

    async def main():
        state = await async_flow(return_state=True)
        value = await state.result()
        failed = await async_fails(return_state=True)
        error = await failed.result(raise_on_failure=False)
        with pytest.raises(ValueError, match="oh no"):
            await failed.result()
        return value, error, state

    value, error, state = asyncio.run(main())
    assert value == "hello" and isinstance(error, ValueError)
    assert state.result() == "hello"  # outside an event loop it is the value
