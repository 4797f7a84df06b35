"""Caching and result persistence through the engine, on every runner."""

from __future__ import annotations

import datetime
import threading
import time
from pathlib import Path

import pytest

from fluvial import StateType, flow, task
from fluvial.cache_policies import DEFAULT, FLOW_PARAMETERS, INPUTS, RUN_ID, TASK_SOURCE
from fluvial.tasks import task_input_hash


def _calls(path: Path) -> int:
    return len(path.read_text().split()) if path.exists() else 0


def _counting(storage: Path, calls: Path, **options):
    @task(result_storage=str(storage), **options)
    def compute(x: int, tag: str = "") -> int:
        with open(calls, "a") as fh:
            fh.write("x\n")
        return x * 10

    return compute


def _run_twice(runner, compute, *args, **kwargs):
    @flow(task_runner=runner)
    def cached():
        state = compute.submit(*args, **kwargs, return_state=True)
        return state.name, state.result()

    return cached(), cached()


def test_inputs_policy_hits_across_flow_runs(runner, tmp_path: Path):
    calls = tmp_path / "calls"
    compute = _counting(tmp_path / "store", calls, cache_policy=INPUTS)
    first, second = _run_twice(runner, compute, 4)
    assert first == ("Completed", 40)
    assert second == ("Cached", 40)
    assert _calls(calls) == 1


def test_cache_key_fn_and_none_means_no_cache(runner, tmp_path: Path):
    calls = tmp_path / "calls"
    compute = _counting(tmp_path / "store", calls, cache_key_fn=task_input_hash)
    assert _run_twice(runner, compute, 1)[1] == ("Cached", 10)
    never = _counting(tmp_path / "store", calls, cache_key_fn=lambda ctx, args: None)
    assert _run_twice(runner, never, 1) == (("Completed", 10), ("Completed", 10))
    assert _calls(calls) == 3


def test_refresh_cache_recomputes(runner, tmp_path: Path):
    calls = tmp_path / "calls"
    compute = _counting(tmp_path / "store", calls, cache_policy=INPUTS)
    _run_twice(runner, compute, 2)
    refreshed = compute.with_options(refresh_cache=True)
    assert _run_twice(runner, refreshed, 2) == (("Completed", 20), ("Completed", 20))
    assert _calls(calls) == 3


def test_expiration(runner, tmp_path: Path):
    calls = tmp_path / "calls"
    compute = _counting(tmp_path / "store", calls, cache_policy=INPUTS,
                        cache_expiration=datetime.timedelta(seconds=0.5))
    first, second = _run_twice(runner, compute, 3)
    assert second[0] == "Cached"
    time.sleep(0.6)
    third, _ = _run_twice(runner, compute, 3)
    assert third == ("Completed", 30)


def test_policies(runner, tmp_path: Path):
    calls = tmp_path / "calls"
    store = tmp_path / "store"
    without_tag = _counting(store, calls, cache_policy=INPUTS - "tag")

    @flow(task_runner=runner)
    def policies():
        a = without_tag.submit(1, tag="a", return_state=True).name
        b = without_tag.submit(1, tag="b", return_state=True).name  # tag is not in the key
        return a, b

    assert policies() == ("Completed", "Cached")
    per_run = _counting(store, calls, cache_policy=DEFAULT)

    @flow(task_runner=runner)
    def same_run():
        first = per_run.submit(7, return_state=True).name
        return first, per_run.submit(7, return_state=True).name

    assert same_run() == ("Completed", "Cached")
    assert same_run() == ("Completed", "Cached")  # RUN_ID: a new flow run misses
    assert (INPUTS + TASK_SOURCE + RUN_ID).policies == DEFAULT.policies


def test_flow_parameters_policy(runner, tmp_path: Path):
    compute = _counting(tmp_path / "store", tmp_path / "calls", cache_policy=FLOW_PARAMETERS)

    @flow(task_runner=runner)
    def parametrized(p: int):
        return compute.submit(1, return_state=True).name

    assert [parametrized(1), parametrized(1), parametrized(2)] == ["Completed", "Cached",
                                                                   "Completed"]


def test_unhashable_input_fails_naming_the_parameter(session_runner, tmp_path: Path):
    # Only in-process runs can receive an object that cannot be pickled (hashing falls
    # back to pickling); the remote runners refuse it at submit (see tests/runners).
    @task(cache_policy=INPUTS, result_storage=str(tmp_path))
    def guarded(x: int, lock) -> int:
        return x

    @flow(task_runner=session_runner("threads"))
    def unhashable():
        state = guarded.submit(1, threading.Lock(), return_state=True)
        return state.type, state.message

    state_type, message = unhashable()
    assert state_type is StateType.FAILED
    assert "'guarded'" in message and "'lock'" in message


def test_corrupted_record_is_a_miss(runner, tmp_path: Path):
    calls = tmp_path / "calls"
    store = tmp_path / "store"
    compute = _counting(store, calls, cache_policy=INPUTS)
    _run_twice(runner, compute, 5)
    for record in store.iterdir():
        if record.is_file():
            record.write_bytes(record.read_bytes()[:10])
    first, second = _run_twice(runner, compute, 5)
    assert first == ("Completed", 50)
    assert second == ("Cached", 50)


def test_persist_result_false_writes_nothing(runner, tmp_path: Path):
    store = tmp_path / "store"

    @task(persist_result=False, result_storage=str(store))
    def intermediate(x: int) -> int:
        return x

    @flow(task_runner=runner)
    def plain():
        return intermediate.map(range(3)).result()

    assert plain() == [0, 1, 2]
    assert not store.exists() or not any(store.iterdir())


@pytest.mark.parametrize("isolation", ["SERIALIZABLE"])
def test_serializable_isolation_computes_once(runner, tmp_path: Path, isolation):
    calls = tmp_path / "calls"

    @task(cache_policy=INPUTS.configure(isolation_level=isolation),
          result_storage=str(tmp_path / "store"))
    def slow(x: int) -> int:
        import time

        with open(calls, "a") as fh:
            fh.write("x\n")
        time.sleep(0.2)
        return x

    @flow(task_runner=runner)
    def racing():
        return [s.name for s in slow.map([1, 1, 1, 1], return_state=True)]

    names = racing()
    assert sorted(names) == ["Cached", "Cached", "Cached", "Completed"]
    assert _calls(calls) == 1
