"""Options are checked when they are given, not when the work has run (issue 16, item 12).

Every bad option of ``@task``, ``@flow`` and ``with_options`` is a ``TypeError`` or
``ValueError`` naming the task (or flow) and the option, at decoration. A cache key that
cannot name a result record fails the run — a ``Failed`` state, on every runner — and
creates nothing outside the result storage directory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from fluvial import StateType, flow, task
from fluvial.cache_policies import CachePolicy


def _work(x: int = 1) -> int:
    return x


BAD_TASK_OPTIONS = [
    ("timeout_seconds", math.inf, ValueError),
    ("timeout_seconds", math.nan, ValueError),
    ("timeout_seconds", -1, ValueError),
    ("timeout_seconds", 0, ValueError),
    ("timeout_seconds", "10", TypeError),
    ("retry_delay_seconds", math.nan, ValueError),
    ("retry_delay_seconds", math.inf, ValueError),
    ("retry_delay_seconds", [1, math.nan], ValueError),
    ("retry_delay_seconds", [1, -2], ValueError),
    ("retry_delay_seconds", "5", TypeError),
    ("retry_delay_seconds", object(), TypeError),
    ("retry_jitter_factor", math.nan, ValueError),
    ("retries", -1, ValueError),
    ("retries", 1.5, TypeError),
    ("retries", math.inf, TypeError),
    ("result_serializer", "nope", ValueError),
    ("result_serializer", "compressed/nope", ValueError),
    ("result_serializer", 42, TypeError),
    ("cache_key_fn", 42, TypeError),
    ("cache_policy", "INPUTS", TypeError),
    ("retry_condition_fn", "yes", TypeError),
    ("on_completion", [42], TypeError),
    ("on_failure", 42, TypeError),
    ("tags", [1, 2], TypeError),
    ("tags", 5, TypeError),
    ("refresh_cache", "yes", TypeError),
    ("persist_result", "yes", TypeError),
    ("log_prints", 1, TypeError),
    ("version", 3, TypeError),
    ("result_storage", 42, TypeError),
    ("cache_expiration", 60, TypeError),
    ("task_run_name", 42, TypeError),
]


@pytest.mark.parametrize(("option", "value", "error"), BAD_TASK_OPTIONS,
                         ids=[f"{o}={v!r}" for o, v, _ in BAD_TASK_OPTIONS])
def test_bad_task_option_fails_at_decoration(option: str, value: Any, error: type) -> None:
    if option == "retry_delay_seconds":
        extra: dict[str, Any] = {"retries": 2}
    else:
        extra = {}
    with pytest.raises(error) as info:
        task(name="load_rows", **extra, **{option: value})(_work)
    assert "load_rows" in str(info.value) and option in str(info.value)


@pytest.mark.parametrize(("option", "value", "error"), BAD_TASK_OPTIONS,
                         ids=[f"{o}={v!r}" for o, v, _ in BAD_TASK_OPTIONS])
def test_bad_task_option_fails_in_with_options(option: str, value: Any, error: type) -> None:
    good = task(name="load_rows", retries=2)(_work)
    with pytest.raises(error) as info:
        good.with_options(**{option: value})
    assert "load_rows" in str(info.value) and option in str(info.value)


BAD_FLOW_OPTIONS = [
    ("timeout_seconds", math.inf, ValueError),
    ("timeout_seconds", math.nan, ValueError),
    ("timeout_seconds", -5, ValueError),
    ("retry_delay_seconds", math.nan, ValueError),
    ("retry_delay_seconds", -1, ValueError),
    ("retries", -1, ValueError),
    ("result_serializer", "nope", ValueError),
    ("result_storage", 42, TypeError),
    ("persist_result", "no", TypeError),
    ("validate_parameters", "no", TypeError),
    ("flow_run_name", 42, TypeError),
    ("on_failure", [None], TypeError),
]


@pytest.mark.parametrize(("option", "value", "error"), BAD_FLOW_OPTIONS,
                         ids=[f"{o}={v!r}" for o, v, _ in BAD_FLOW_OPTIONS])
def test_bad_flow_option_fails_at_decoration(option: str, value: Any, error: type) -> None:
    with pytest.raises(error) as info:
        flow(name="nightly", **{option: value})(_work)
    assert "nightly" in str(info.value) and option in str(info.value)
    good = flow(name="nightly")(_work)
    with pytest.raises(error):
        good.with_options(**{option: value})


def test_good_options_still_accepted() -> None:
    t = task(timeout_seconds=1.5, retries=2, retry_delay_seconds=[0, 1.0],
             result_serializer="compressed/json", cache_key_fn=lambda c, a: "k",
             tags="io", persist_result=True, result_storage=Path("/tmp/x"))(_work)
    assert t.tags == frozenset({"io"})
    assert flow(timeout_seconds=3, result_serializer="cloudpickle")(_work).timeout_seconds == 3


@dataclass
class RawKey(CachePolicy):
    """A policy that hands back its key as it is (as a user-written policy may)."""

    key: str = ""

    def compute_key(self, task_ctx: Any, inputs: dict[str, Any],
                    flow_parameters: dict[str, Any], **kwargs: Any) -> str | None:
        return self.key


def _raw_key_task(key: str, storage: Path):
    return task(name="keyed", result_storage=str(storage),
                cache_policy=RawKey(key=key).configure(isolation_level="SERIALIZABLE"))(_work)


@pytest.mark.parametrize("key", ["../../escaped", "a/b", "", ".hidden", "k" * 300, "nul\0"],
                         ids=["dotdot", "slash", "empty", "dot", "long", "nul"])
def test_a_key_that_is_not_a_file_name_fails_the_run(key: str, tmp_path: Path) -> None:
    storage = tmp_path / "deep" / "storage"
    keyed = _raw_key_task(key, storage)

    @flow
    def uses_key():
        state = keyed(return_state=True)
        return state.type, state.message

    state_type, message = uses_key()
    assert state_type is StateType.FAILED
    assert "keyed" in message and "cache key" in message
    outside = [p for p in tmp_path.rglob("*") if storage not in p.parents and p != storage
               and p not in storage.parents]
    assert outside == [], f"created outside the storage directory: {outside}"


def test_a_bad_key_fails_the_run_on_every_runner(runner, tmp_path: Path) -> None:
    storage = tmp_path / "storage"
    keyed = _raw_key_task("../../escaped", storage)

    @flow(task_runner=runner)
    def mapped():
        futures = keyed.map([1, 2])
        futures.wait()
        return [(f.state.type, f.state.message) for f in futures]

    states = mapped()
    assert [t for t, _ in states] == [StateType.FAILED, StateType.FAILED]
    assert "cache key '../../escaped'" in states[0][1]
    assert not (tmp_path / "escaped.lock").exists() and not (tmp_path.parent / "escaped.lock").exists()
