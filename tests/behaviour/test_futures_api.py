"""The future interface is the same on every runner."""

from __future__ import annotations

import uuid

import pytest

import fluvial
from fluvial import State, StateType, flow, task


@task
def slow_identity(x: float) -> float:
    import time

    time.sleep(x)
    return x


@task
def fail() -> None:
    raise ZeroDivisionError("nope")


def test_future_interface(runner):
    @flow(task_runner=runner)
    def futures():
        future = slow_identity.submit(0.5)
        assert isinstance(future.task_run_id, uuid.UUID)
        with pytest.raises(TimeoutError):
            future.result(timeout=0.01)
        seen = []
        future.add_done_callback(seen.append)
        assert future.result() == 0.5
        assert future.done() and future.state.is_completed()
        future.add_done_callback(seen.append)
        failed = fail.submit()
        assert failed.result(raise_on_failure=False).__class__ is ZeroDivisionError
        with pytest.raises(ZeroDivisionError):
            failed.result()
        return len(seen), seen[0] is future

    assert futures() == (2, True)


def test_wait_and_as_completed(runner):
    @flow(task_runner=runner)
    def waiting():
        futures = [slow_identity.submit(d) for d in (0.6, 0.0, 0.3)]
        done, not_done = fluvial.wait(futures, timeout=0.001)
        assert len(done) + len(not_done) == 3
        order = []
        for future in fluvial.as_completed(futures):
            assert future.done()  # yielded only once it has finished
            order.append(future.result())
        done, not_done = fluvial.wait(futures)
        return order, len(done), len(not_done)

    order, n_done, n_not_done = waiting()
    assert sorted(order) == [0.0, 0.3, 0.6]
    assert (n_done, n_not_done) == (3, 0)


def test_as_completed_timeout(runner):
    @flow(task_runner=runner)
    def waiting():
        futures = [slow_identity.submit(1.0)]
        with pytest.raises(TimeoutError):
            list(fluvial.as_completed(futures, timeout=0.05))
        return fluvial.wait(futures).done == set(futures)

    assert waiting()


def test_return_state_from_submit_and_map(runner):
    @flow(task_runner=runner)
    def states():
        one = slow_identity.submit(0, return_state=True)
        many = slow_identity.map([0, 0], return_state=True)
        assert isinstance(one, State) and all(isinstance(s, State) for s in many)
        return one.type, one.result(), [s.result() for s in many]

    assert states() == (StateType.COMPLETED, 0, [0, 0])
