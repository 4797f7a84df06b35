"""Transactions (issue 9, item 16): ``from fluvial.transactions import transaction``,
commit modes, values, records and locks; task hooks ``on_commit`` / ``on_rollback`` — a
failure inside the transaction rolls back every task that completed in it, in reverse
order."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest

from fluvial import flow, task
from fluvial.transactions import (
    CommitMode,
    IsolationLevel,
    Transaction,
    TransactionState,
    get_transaction,
    transaction,
)

# -- the transaction itself -------------------------------------------------------------


def test_current_transaction_nests_and_resets_even_on_error():
    assert get_transaction() is None
    with transaction(key="outer") as outer:
        assert get_transaction() is outer and outer.get_parent() is None
        with transaction(key="inner") as inner:
            assert get_transaction() is inner and inner.get_parent() is outer
        assert get_transaction() is outer
    with pytest.raises(ValueError, match="boom"), transaction():
        raise ValueError("boom")
    assert get_transaction() is None


def test_commit_modes():
    with transaction(key="outer") as outer:
        with transaction(key="inner") as inner:
            pass
        assert inner.is_staged() and not outer.is_committed()  # lazy: the outer commits it
    assert outer.is_committed() and inner.is_committed()

    with transaction(key="outer", commit_mode=CommitMode.EAGER) as outer:
        with transaction(key="inner") as inner:  # inherits EAGER
            pass
        assert inner.is_committed()
    with transaction(commit_mode="off") as off:
        pass
    assert off.is_rolled_back()
    with transaction(commit_mode=CommitMode.OFF) as off:
        off.commit()
    assert off.is_committed()


def test_rollback_on_error_by_call_and_upwards():
    with pytest.raises(ValueError), transaction() as failed:
        raise ValueError("x")
    assert failed.is_rolled_back() and not failed.is_committed()
    with transaction(key="outer") as outer:
        with transaction(key="inner") as inner:
            with transaction(key="nested") as nested:
                nested.rollback()
                assert nested.is_rolled_back()
        assert inner.is_rolled_back()
    assert outer.is_rolled_back()


def test_values_are_inherited_copied_and_required():
    with transaction(key="top") as top:
        top.set("key", {"x": [42]})
        with transaction(key="nested") as inner:
            value = inner.get("key")
            value["x"].append(43)
            inner.set("key", value)
            assert inner.get("key") == {"x": [42, 43]} and top.get("key") == {"x": [42]}
        with pytest.raises(ValueError, match="nope"):
            top.get("nope")
        assert top.get("nope", None) is None


def test_states_and_equality():
    txn = Transaction()
    assert txn.is_pending() and txn.commit_mode is None and txn == Transaction()
    assert txn != Transaction(key="other")
    for state in TransactionState:
        t = Transaction(state=state)
        assert t.is_committed() == (state is TransactionState.COMMITTED)
        assert t.is_rolled_back() == (state is TransactionState.ROLLED_BACK)
    with transaction() as t:
        assert t.isolation_level is IsolationLevel.READ_COMMITTED
    with pytest.raises(ValueError, match="commit_mode"):
        Transaction(commit_mode="sometimes")


def test_a_key_records_the_staged_value_and_marks_the_work_done(tmp_path):
    with transaction(key="load-2024", store=tmp_path) as txn:
        assert not txn.is_committed()
        txn.stage({"rows": 3})
    assert txn.read().result == {"rows": 3}
    with transaction(key="load-2024", store=tmp_path) as again:
        assert again.is_committed()  # done before: the block can skip the work
    with transaction(key="load-2024", store=tmp_path, overwrite=True) as forced:
        assert not forced.is_committed()


def test_serializable_transactions_on_one_key_run_one_at_a_time(tmp_path):
    inside = threading.Event()
    order: list[str] = []

    def first() -> None:
        with transaction(key="k", store=tmp_path, isolation_level="SERIALIZABLE"):
            inside.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    inside.wait()
    with transaction(key="k", store=tmp_path, isolation_level=IsolationLevel.SERIALIZABLE):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]
    with pytest.raises(ValueError, match="key"):
        with transaction(isolation_level="SERIALIZABLE"):
            pass


# -- tasks in transactions --------------------------------------------------------------

events: list[str] = []


@task
def write_file(path: str, contents: str) -> str:
    Path(path).write_text(contents)
    return path


@write_file.on_rollback
def delete_file(txn: Transaction) -> None:
    events.append(f"rollback write_file {txn.get('label')}")
    Path(txn.get("path")).unlink()


@write_file.on_commit
def announce(txn: Transaction) -> None:
    events.append(f"commit write_file {txn.get('label')}")


@task
def quality_check(path: str, minimum: int) -> None:
    if len(Path(path).read_text().splitlines()) < minimum:
        raise ValueError("not enough data")


def _pipeline(runner: Any, path: str, minimum: int, submit: bool) -> Any:
    @flow(task_runner=runner)
    def pipeline() -> Any:
        with transaction(key=None) as txn:
            txn.set("path", path)
            txn.set("label", "a")
            if submit:
                written = write_file.submit(path, "one\ntwo\n")
                quality_check.submit(written, minimum)
            else:
                quality_check(write_file(path, "one\ntwo\n"), minimum)
        return txn.state

    return pipeline(return_state=True)


@pytest.mark.parametrize("submit", [False, True])
def test_a_failure_in_the_transaction_rolls_back_completed_tasks(runner, tmp_path, submit):
    events.clear()
    path = str(tmp_path / "side-effect.txt")
    _pipeline(runner, path, 5, submit)
    assert events == ["rollback write_file a"]
    assert not Path(path).exists()


@pytest.mark.parametrize("submit", [False, True])
def test_success_commits_and_calls_on_commit(runner, tmp_path, submit):
    events.clear()
    path = str(tmp_path / "side-effect.txt")
    state = _pipeline(runner, path, 2, submit)
    assert state.is_completed() and state.result() is TransactionState.COMMITTED
    assert events == ["commit write_file a"]
    assert Path(path).exists()


def test_rollback_runs_in_reverse_order_of_completion():
    order: list[str] = []

    def undo(name: str) -> Any:
        return lambda txn: order.append(name)

    first = task(lambda: 1, name="first", on_rollback=[undo("first")])
    second = task(lambda: 2, name="second").with_options(on_rollback=undo("second"))
    third = task(lambda: 3, name="third", on_rollback=undo("third"),
                 on_commit=lambda txn: order.append("never"))

    @task
    def boom() -> None:
        raise RuntimeError("late failure")

    @flow
    def steps() -> None:
        with transaction():
            first()
            second()
            third()
            boom()

    with pytest.raises(RuntimeError, match="late failure"):
        steps()
    assert order == ["third", "second", "first"]


def test_tasks_outside_a_transaction_call_no_hooks():
    calls: list[str] = []
    quiet = task(lambda: 1, name="quiet", on_rollback=lambda t: calls.append("rb"),
                 on_commit=lambda t: calls.append("c"))

    @flow
    def plain() -> int:
        return quiet()

    assert plain() == 1 and calls == []


def test_a_failing_rollback_hook_is_logged_and_the_others_still_run(caplog):
    order: list[str] = []

    def broken(txn: Transaction) -> None:
        raise OSError("disk gone")

    a = task(lambda: 1, name="a", on_rollback=lambda t: order.append("a"))
    b = task(lambda: 2, name="b", on_rollback=broken)

    with pytest.raises(KeyError), transaction():
        a()
        b()
        raise KeyError("stop")
    assert order == ["a"]
    assert "disk gone" in caplog.text


def test_hook_options_are_checked():
    with pytest.raises(TypeError, match="on_rollback"):
        task(lambda: 1, on_rollback=[42])
