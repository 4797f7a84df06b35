"""The public API: ``fluvial.__all__``, the Prefect-compatible import paths, and a light
``import fluvial``."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys

import pytest

import fluvial


def test_every_name_in_all_resolves():
    assert len(set(fluvial.__all__)) == len(fluvial.__all__)
    for name in fluvial.__all__:
        assert getattr(fluvial, name) is not None, name


def test_the_core_api_is_exported():
    for name in ("flow", "task", "unmapped", "tags", "get_run_logger", "concurrency",
                 "wait", "as_completed", "Future", "PrefectFuture", "FutureList", "State",
                 "get_run_context", "quote", "opaque", "disable_run_logger"):
        assert name in fluvial.__all__, name


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError):
        fluvial.not_a_real_name  # noqa: B018


@pytest.mark.parametrize(
    ("module", "names"),
    [
        ("fluvial", ["flow", "task", "unmapped", "tags", "get_run_logger", "concurrency"]),
        ("fluvial.futures", ["wait", "as_completed", "PrefectFuture", "Future",
                             "PrefectFutureList", "resolve_futures_to_results",
                             "resolve_futures_to_states"]),
        ("fluvial.runners", ["ThreadPoolTaskRunner", "ProcessPoolTaskRunner", "TaskRunner"]),
        ("fluvial.task_runners", ["ThreadPoolTaskRunner", "ProcessPoolTaskRunner"]),
        ("fluvial.tasks", ["exponential_backoff", "task_input_hash", "Task", "task"]),
        ("fluvial.states", ["State", "StateType", "Completed", "Failed", "Crashed", "Cached",
                            "Retrying", "TimedOut", "NotReady", "Cancelled", "Pending",
                            "Running", "Scheduled", "Paused", "StateGroup"]),
        ("fluvial.context", ["FlowRunContext", "TaskRunContext", "get_run_context"]),
        ("fluvial.annotations", ["unmapped", "quote", "opaque", "allow_failure"]),
        ("fluvial.utilities.annotations", ["unmapped", "quote", "opaque", "allow_failure",
                                           "BaseAnnotation", "NotSet"]),
        ("fluvial", ["allow_failure", "quote", "opaque"]),
        ("fluvial.cache_policies", ["INPUTS", "TASK_SOURCE", "DEFAULT", "NO_CACHE"]),
        ("fluvial.logging", ["get_run_logger", "disable_run_logger"]),
        ("fluvial.flows", ["Flow", "flow"]),
        ("fluvial.exceptions", ["ParameterTypeError", "MissingContextError", "InvalidNameError",
                                "ReservedArgumentError", "ParameterBindError",
                                "SignatureMismatchError"]),
    ],
)
def test_prefect_compatible_import_paths(module, names):
    mod = importlib.import_module(module)
    for name in names:
        assert hasattr(mod, name), f"{module}.{name}"
    for name in getattr(mod, "__all__", ()):
        assert hasattr(mod, name), f"{module}.__all__ lists missing {name}"


def test_aliases_point_at_the_same_objects():
    from fluvial.futures import PrefectFuture
    from fluvial.runners import ThreadPoolTaskRunner
    from fluvial.task_runners import ThreadPoolTaskRunner as AliasRunner

    assert PrefectFuture is fluvial.Future
    assert AliasRunner is ThreadPoolTaskRunner
    assert fluvial.unmapped is importlib.import_module("fluvial.annotations").unmapped
    assert fluvial.get_run_context is importlib.import_module("fluvial.context").get_run_context


def test_exceptions_follow_the_documented_hierarchy():
    from fluvial import exceptions as ex

    assert issubclass(ex.ParameterTypeError, ex.FlowError)
    assert issubclass(ex.ParameterTypeError, ValueError)
    assert issubclass(ex.MissingContextError, RuntimeError)
    assert issubclass(ex.TaskTimeoutError, TimeoutError)
    assert issubclass(ex.FlowTimeoutError, TimeoutError)
    assert issubclass(ex.MappingLengthMismatch, ValueError)
    assert issubclass(ex.MappingTypeError, TypeError)
    for name in ("FlowError", "TaskError", "FailedRun", "MissingContextError", "RunnerError"):
        assert issubclass(getattr(ex, name), ex.FluvialError)


def test_import_fluvial_does_not_import_heavy_backends():
    code = (
        "import json, sys\n"
        "import fluvial\n"
        "from fluvial import flow, task\n"
        "import fluvial.runners, fluvial.task_runners, fluvial.futures\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('dask', 'distributed', 'ray', 'matplotlib')]\n"
        "print(json.dumps(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
