"""States: constructors, predicates, results, timestamps and pickling."""

from __future__ import annotations

import enum
import time
import traceback
from datetime import timedelta

import cloudpickle
import pytest

from fluvial import flow, task
from fluvial import states as st
from fluvial.exceptions import RemoteTraceback
from fluvial.states import State, StateType

CONSTRUCTORS = [
    (lambda: st.Completed(data=1), StateType.COMPLETED, "Completed"),
    (lambda: st.Failed(data=ValueError("x")), StateType.FAILED, "Failed"),
    (lambda: st.Crashed(data=RuntimeError("x")), StateType.CRASHED, "Crashed"),
    (lambda: st.Cached(data=1), StateType.COMPLETED, "Cached"),
    (lambda: st.Retrying(), StateType.RUNNING, "Retrying"),
    (lambda: st.TimedOut(data=TimeoutError("x")), StateType.FAILED, "TimedOut"),
    (lambda: st.NotReady(message="upstream failed"), StateType.FAILED, "NotReady"),
    (lambda: st.Cancelled(), StateType.CANCELLED, "Cancelled"),
    (lambda: st.Pending(), StateType.PENDING, "Pending"),
    (lambda: st.Running(), StateType.RUNNING, "Running"),
    (lambda: st.Scheduled(), StateType.SCHEDULED, "Scheduled"),
    (lambda: st.Paused(), StateType.PAUSED, "Paused"),
    (lambda: st.Cancelling(), StateType.CANCELLING, "Cancelling"),
]

PREDICATES = {
    StateType.SCHEDULED: "is_scheduled",
    StateType.PENDING: "is_pending",
    StateType.RUNNING: "is_running",
    StateType.COMPLETED: "is_completed",
    StateType.FAILED: "is_failed",
    StateType.CRASHED: "is_crashed",
    StateType.CANCELLED: "is_cancelled",
    StateType.PAUSED: "is_paused",
    StateType.CANCELLING: "is_cancelling",
}


def test_state_type_is_an_enum_with_the_prefect_members():
    assert issubclass(StateType, enum.Enum)
    assert {m.name for m in StateType} == {
        "SCHEDULED", "PENDING", "RUNNING", "COMPLETED", "FAILED", "CRASHED", "CANCELLED",
        "PAUSED", "CANCELLING",
    }


@pytest.mark.parametrize(("make", "type_", "name"), CONSTRUCTORS,
                         ids=[c[2] for c in CONSTRUCTORS])
def test_constructor_type_and_name(make, type_, name):
    state = make()
    assert isinstance(state, State)
    assert state.type is type_
    assert state.name == name


@pytest.mark.parametrize(("make", "type_", "name"), CONSTRUCTORS,
                         ids=[c[2] for c in CONSTRUCTORS])
def test_exactly_one_type_predicate_is_true(make, type_, name):
    state = make()
    for member, predicate in PREDICATES.items():
        assert getattr(state, predicate)() is (member is type_), (name, predicate)


def test_is_final():
    assert st.Completed().is_final()
    assert st.Failed().is_final()
    assert st.Crashed().is_final()
    assert st.Cancelled().is_final()
    assert not st.Running().is_final()
    assert not st.Cancelling().is_final()
    assert not st.Pending().is_final()
    assert not st.Scheduled().is_final()
    assert not st.Retrying().is_final()


def test_message_is_kept():
    assert st.Completed(data=1, message="all good").message == "all good"
    assert st.NotReady(message="upstream 'a' failed").message == "upstream 'a' failed"


def test_completed_result_returns_the_data():
    assert st.Completed(data={"a": 1}).result() == {"a": 1}
    assert st.Cached(data=[1, 2]).result() == [1, 2]


def test_failed_result_reraises_the_same_exception_object():
    exc = KeyError("missing")
    state = st.Failed(data=exc)
    with pytest.raises(KeyError) as info:
        state.result()
    assert info.value is exc


def test_failed_result_without_raising_returns_the_exception():
    exc = ValueError("nope")
    assert st.Failed(data=exc).result(raise_on_failure=False) is exc
    assert st.Crashed(data=exc).result(raise_on_failure=False) is exc


def test_failed_state_without_an_exception_still_raises_on_result():
    with pytest.raises(Exception, match="went wrong"):
        st.Failed(message="went wrong").result()


def test_crashed_and_cancelled_results_raise():
    with pytest.raises(RuntimeError, match="worker died"):
        st.Crashed(data=RuntimeError("worker died")).result()
    with pytest.raises(Exception):  # noqa: B017 - any error: a cancelled run has no result
        st.Cancelled(message="cancelled by user").result()


def explode_in_a_named_function(x):
    raise ValueError(f"bad input {x}")


@task
def exploding_task(x):
    return explode_in_a_named_function(x)


def _frame_names(exc: BaseException) -> list[str]:
    return [frame.name for frame in traceback.extract_tb(exc.__traceback__)]


def test_result_of_a_failed_task_run_keeps_the_original_traceback():
    state = exploding_task(3, return_state=True)
    assert state.is_failed()
    with pytest.raises(ValueError, match="bad input 3") as info:
        state.result()
    assert "explode_in_a_named_function" in _frame_names(info.value)


def test_result_of_a_failed_submitted_task_keeps_the_original_traceback():
    seen = {}

    @flow
    def submits_it():
        future = exploding_task.submit(4)
        future.wait()
        seen["state"] = future.state

    submits_it()
    state = seen["state"]
    assert state.name == "Failed"
    with pytest.raises(ValueError) as info:
        state.result()
    assert "explode_in_a_named_function" in _frame_names(info.value)


def test_a_flow_reraises_its_task_exception_with_the_original_frames():
    @flow
    def returns_failed_state():
        return exploding_task(5, return_state=True)

    with pytest.raises(ValueError, match="bad input 5") as info:
        returns_failed_state()
    assert "explode_in_a_named_function" in _frame_names(info.value)


def test_timestamp_is_timezone_aware_and_current():
    before = time.time()
    state = st.Completed(data=1)
    stamp = state.timestamp
    assert stamp.tzinfo is not None
    assert stamp.utcoffset() == timedelta(0)
    assert before - 1 <= stamp.timestamp() <= time.time() + 1


def test_failed_state_pickle_round_trip_keeps_exception_and_adds_remote_traceback():
    try:
        explode_in_a_named_function(7)
    except ValueError as exc:
        state = st.Failed(data=exc)

    copy = cloudpickle.loads(cloudpickle.dumps(state))

    assert copy.type is StateType.FAILED
    assert copy.name == "Failed"
    assert copy.message == state.message
    assert isinstance(copy.data, ValueError)
    assert copy.data.args == ("bad input 7",)
    cause = copy.data.__cause__
    assert isinstance(cause, RemoteTraceback)
    assert "explode_in_a_named_function" in str(cause)
    with pytest.raises(ValueError, match="bad input 7"):
        copy.result()


def test_completed_state_pickle_round_trip():
    state = st.Cached(data={"k": [1, 2]}, message="hit")
    copy = cloudpickle.loads(cloudpickle.dumps(state))
    assert (copy.type, copy.name, copy.message, copy.result()) == (
        StateType.COMPLETED, "Cached", "hit", {"k": [1, 2]})
    assert copy.timestamp == state.timestamp


def test_state_group_counts_as_prefect_does():
    from fluvial.states import Cancelled, Completed, Crashed, Failed, Pending, StateGroup

    group = StateGroup([Completed(), Failed(), Crashed(), Pending()])
    assert group.total_count == 4 and group.fail_count == 2
    assert group.any_failed() and not group.all_completed() and not group.any_cancelled()
    assert not group.all_final() and group.not_final_count == 1
    assert group.counts_message() == (
        "total=4, not_final=1, 'COMPLETED'=1, 'FAILED'=1, 'CRASHED'=1, 'PENDING'=1")
    assert repr(group).startswith("StateGroup<total=4")
    assert StateGroup([Completed(), Completed()]).all_completed()
    assert StateGroup([Completed(), Cancelled()]).any_cancelled()


def test_a_failed_state_of_states_raises_the_first_failure():
    from fluvial.states import Completed, Failed, StateType, return_value_to_state

    inner = Failed(ValueError("inner"))
    inner.run_id = "run"
    done = Completed(1)
    done.run_id = "run"
    state = return_value_to_state([done, inner])
    assert state.type is StateType.FAILED and state.message == "1/2 states failed."
    with pytest.raises(ValueError, match="inner"):
        state.result()
    assert state.result(raise_on_failure=False) == [done, inner]
    hand_made = Completed(message="mine", data=3)
    assert return_value_to_state(hand_made) is hand_made
    assert return_value_to_state(("bar", inner)).is_completed()  # values mixed with states
    assert return_value_to_state([]).is_completed()
