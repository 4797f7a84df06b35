"""Cache policies written for Prefect, and Prefect's result options (issue 9, item 13):
``CachePolicy.compute_key(task_ctx, inputs, flow_parameters, **kwargs)``, the ``DEFAULT``
policy, ``persist_result`` implied as in Prefect, ``result_storage_key=`` and
``cache_result_in_memory=``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fluvial import flow, task
from fluvial.cache_policies import DEFAULT, INPUTS, NO_CACHE, CacheKeyFnPolicy, CachePolicy
from fluvial.states import StoredResult


class ParityKey(CachePolicy):
    """A policy as a Prefect user writes it: no @dataclass, Prefect's signature."""

    def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs):
        return f"{task_ctx.task.name}-{inputs['x'] % 2}"


@dataclass
class ByFlowParameter(CachePolicy):
    """A dataclass policy reading the flow run's parameters."""

    parameter: str = "version"

    def compute_key(self, task_ctx, inputs, flow_parameters, **kwargs):
        return f"v{flow_parameters[self.parameter]}"


def _calls(path: Path) -> int:
    return len(path.read_text().split()) if path.exists() else 0


def _counting(storage: Path, calls: Path, **options: Any):
    @task(result_storage=str(storage), **options)
    def compute(x: int) -> int:
        with open(calls, "a") as fh:
            fh.write("x\n")
        return x * 10

    return compute


def test_a_prefect_style_policy_keys_the_cache(runner, tmp_path):
    calls = tmp_path / "calls"
    compute = _counting(tmp_path / "store", calls, cache_policy=ParityKey())

    @flow(task_runner=runner)
    def odd_even() -> list[tuple[str, int]]:
        states = [compute.submit(x, return_state=True) for x in (1, 3, 2)]
        return [(s.name, s.result()) for s in states]

    assert odd_even() == [("Completed", 10), ("Cached", 10), ("Completed", 20)]
    assert _calls(calls) == 2


def test_a_policy_reads_the_flow_parameters_on_every_runner(runner, tmp_path):
    calls = tmp_path / "calls"
    compute = _counting(tmp_path / "store", calls, cache_policy=ByFlowParameter() + INPUTS)

    @flow(task_runner=runner)
    def versioned(version: int) -> str:
        return compute.submit(1, return_state=True).name

    assert [versioned(1), versioned(1), versioned(2)] == ["Completed", "Cached", "Completed"]
    assert _calls(calls) == 2


def test_the_default_policy_is_prefects_default():
    @task
    def plain() -> None: ...

    assert plain.cache_policy is DEFAULT and plain.persist_result is False
    assert task(persist_result=False, cache_policy=INPUTS)(lambda: 1).cache_policy is NO_CACHE
    assert isinstance(CachePolicy.from_cache_key_fn(lambda ctx, inputs: "k"), CacheKeyFnPolicy)


@pytest.mark.parametrize("option", [
    {"cache_policy": INPUTS}, {"cache_key_fn": lambda ctx, inputs: "k"},
    {"result_storage_key": "k"}, {"result_storage": "/tmp"}, {"result_serializer": "json"},
])
def test_persist_result_is_implied_as_in_prefect(option):
    assert task(**option)(lambda: 1).persist_result is True
    assert task(**option, persist_result=False)(lambda: 1).persist_result is False
    assert task(lambda: 1).persist_result is False
    assert task(cache_policy=NO_CACHE)(lambda: 1).persist_result is False


def test_without_persistence_nothing_is_cached(tmp_path):
    calls = tmp_path / "calls"

    @task
    def compute(x: int) -> int:
        with open(calls, "a") as fh:
            fh.write("x\n")
        return x

    @flow
    def twice() -> list[str]:
        return [compute(1, return_state=True).name, compute(1, return_state=True).name]

    assert twice() == ["Completed", "Completed"]
    assert _calls(calls) == 2


def test_persisted_results_are_found_again_within_the_flow_run(runner, tmp_path):
    calls = tmp_path / "calls"
    compute = _counting(tmp_path / "store", calls, persist_result=True)
    no_cache = _counting(tmp_path / "store", calls, persist_result=True, cache_policy=NO_CACHE)

    @flow(task_runner=runner)
    def twice() -> list[str]:
        first = compute.submit(5, return_state=True).name
        return [first, compute.submit(5, return_state=True).name,
                no_cache.submit(5, return_state=True).name]

    assert twice() == ["Completed", "Cached", "Completed"]
    assert twice() == ["Completed", "Cached", "Completed"]  # RUN_ID: a new run computes
    assert _calls(calls) == 4


def test_result_storage_key_names_the_record_and_keys_the_cache(runner, tmp_path):
    store = tmp_path / "store"
    calls = tmp_path / "calls"
    compute = _counting(store, calls, result_storage_key="square-{parameters[x]}")

    @flow(task_runner=runner)
    def keyed() -> tuple[str, int]:
        state = compute.submit(4, return_state=True)
        return state.name, state.result()

    assert keyed() == ("Completed", 40)
    assert (store / "square-4").is_file()
    assert keyed() == ("Cached", 40)
    assert _calls(calls) == 1


def test_a_bad_result_storage_key_fails_the_run_naming_it(tmp_path):
    compute = _counting(tmp_path / "store", tmp_path / "calls",
                        result_storage_key="k-{parameters[nope]}")

    @flow
    def bad() -> tuple[bool, str]:
        state = compute(1, return_state=True)
        return state.is_failed(), state.message

    failed, message = bad()
    assert failed and "nope" in message and "compute" in message


@task
def add_one(x: int) -> int:
    return x + 1


def test_cache_result_in_memory_false_reads_the_result_back(runner, tmp_path):
    compute = _counting(tmp_path / "store", tmp_path / "calls", persist_result=True,
                        cache_result_in_memory=False)

    @flow(task_runner=runner)
    def lean() -> tuple[Any, int, int]:
        future = compute.submit(6)
        state = future.state if future.wait() is None else None
        return type(state.data).__name__, future.result(), add_one.submit(future).result()

    assert lean() == (StoredResult.__name__, 60, 61)


def test_bad_result_options_fail_at_decoration():
    with pytest.raises(TypeError, match="result_storage_key"):
        task(result_storage_key=42)(lambda: 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cache_result_in_memory"):
        task(cache_result_in_memory="no")(lambda: 1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="cache_policy must be a CachePolicy"):
        task(cache_policy="inputs")(lambda: 1)


# -- the policy objects, as Prefect's tests/test_cache_policies.py has them ---------------


def test_policy_objects_follow_prefects_rules():
    from fluvial.cache_policies import (
        CompoundCachePolicy,
        Inputs,
        RunId,
        TaskSource,
        _None,
    )

    with pytest.raises(NotImplementedError):
        CachePolicy().compute_key(task_ctx=None, inputs=None, flow_parameters=None)
    assert _None().compute_key(task_ctx=None, inputs=None, flow_parameters=None) is None
    for other in (Inputs(), TaskSource(), RunId(), CompoundCachePolicy()):
        assert _None() + other == other
    policy = Inputs() - "y"
    assert policy.exclude == ["y"]
    key = policy.compute_key(task_ctx=None, inputs={"x": 42}, flow_parameters=None)
    assert key == policy.compute_key(task_ctx=None, inputs={"x": 42, "y": 1},
                                     flow_parameters=None)
    assert key != Inputs().compute_key(task_ctx=None, inputs={"x": 43}, flow_parameters=None)
    run_id = RunId() + TaskSource()
    assert run_id - "foo" is run_id and RunId() - "foo" == RunId()
    nested = CompoundCachePolicy(policies=[CompoundCachePolicy(policies=[Inputs(), TaskSource()]),
                                           CompoundCachePolicy(policies=[RunId()])])
    assert len(nested.policies) == 3
    merged = CompoundCachePolicy(policies=[Inputs(), TaskSource(), Inputs(exclude=["x"]),
                                           Inputs(exclude=["y"])]) - "z"
    [inputs] = [p for p in merged.policies if isinstance(p, Inputs)]
    assert sorted(inputs.exclude) == ["x", "y", "z"]
    assert CompoundCachePolicy(policies=[_None(), _None()]).compute_key(
        task_ctx=None, inputs={"z": [1]}, flow_parameters={}) is None
    # a part without a key is left out; the others still key the run
    assert DEFAULT.compute_key(task_ctx=None, inputs={"x": 42}, flow_parameters=None) != \
        DEFAULT.compute_key(task_ctx=None, inputs={"x": 43}, flow_parameters=None)
    configured = Inputs().configure(key_storage="/path/to/storage", lock_manager="locks",
                                    isolation_level="SERIALIZABLE")
    assert (configured.key_storage, configured.lock_manager, configured.isolation_level) == (
        "/path/to/storage", "locks", "SERIALIZABLE")


def test_task_source_keys_follow_the_function():
    from fluvial.cache_policies import TaskSource

    class Ctx:
        def __init__(self, fn: Any) -> None:
            self.task = fn

    def one() -> None: ...

    def two(x: int) -> None: ...

    keys = {TaskSource().compute_key(task_ctx=Ctx(f), inputs=None, flow_parameters=None)
            for f in (one, two)}
    assert len(keys) == 2 and None not in keys


def test_key_storage_holds_the_records(tmp_path):
    records = tmp_path / "records"
    compute = _counting(tmp_path / "store", tmp_path / "calls",
                        cache_policy=INPUTS.configure(key_storage=str(records)))

    @flow
    def once() -> int:
        return compute(2)

    assert once() == 20 and once() == 20
    assert _calls(tmp_path / "calls") == 1
    assert len([p for p in records.iterdir() if p.is_file()]) == 1
