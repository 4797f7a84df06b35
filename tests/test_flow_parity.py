"""Prefect's rules for flow names, arguments and methods: default names with dashes,
banned characters, Prefect's exception types, ``*args``/``**kwargs`` passed as given,
``@flow`` on methods, ``wait_for=`` on subflow calls."""

from __future__ import annotations

import pytest

from fluvial import allow_failure, flow, task
from fluvial.context import get_run_context
from fluvial.exceptions import (
    FluvialError,
    InvalidNameError,
    ParameterBindError,
    ParameterTypeError,
    ReservedArgumentError,
    SignatureMismatchError,
)
from fluvial.orchestration.parameters import parameters_to_args_kwargs
from fluvial.states import State


def test_default_flow_name_uses_dashes():
    def my_fn():
        return 1

    assert flow(my_fn).name == "my-fn"
    assert flow(lambda: 42).name == "unknown-lambda"
    assert flow(name="keep_this")(my_fn).name == "keep_this"


@pytest.mark.parametrize("name", ["my/flow", "my%flow", "my<flow", "my>flow", "my&flow"])
def test_invalid_flow_name(name):
    with pytest.raises(InvalidNameError, match="contains an invalid character"):
        flow(lambda: 1, name=name)


def test_flow_name_must_be_a_string():
    with pytest.raises(TypeError, match="Expected string for flow parameter 'name'"):
        flow(lambda: 1, name=3)  # type: ignore[arg-type]


def test_exceptions_derive_from_the_project_base_and_prefects_builtins():
    assert issubclass(InvalidNameError, FluvialError) and issubclass(InvalidNameError, ValueError)
    assert issubclass(ReservedArgumentError, TypeError)
    assert issubclass(ParameterBindError, TypeError)
    assert issubclass(ParameterBindError, ParameterTypeError)
    assert issubclass(SignatureMismatchError, TypeError)
    assert issubclass(SignatureMismatchError, FluvialError)


def test_wait_for_is_a_reserved_task_parameter():
    with pytest.raises(ReservedArgumentError, match="'wait_for' is a reserved argument name"):
        @task
        def foo(wait_for):
            pass


def test_arguments_that_do_not_bind_raise_parameter_bind_error():
    @flow
    def two(x, y):
        return x + y

    with pytest.raises(ParameterBindError, match="two") as info:
        two(1, 2, 3)
    assert "too many positional arguments" in str(info.value)
    with pytest.raises(ParameterBindError):
        two(1, 2, 3, return_state=True)  # Prefect raises here too: nothing to run


def test_parameters_to_args_kwargs_and_signature_mismatch():
    def fn(a, *args, b=1, **kwargs):
        return a, args, b, kwargs

    args, kwargs = parameters_to_args_kwargs(fn, {"a": 1, "args": (2, 3), "kwargs": {"c": 4}})
    assert fn(*args, **kwargs) == (1, (2, 3), 1, {"c": 4})
    with pytest.raises(SignatureMismatchError, match="Function expects parameters"):
        parameters_to_args_kwargs(fn, {"a": 1, "nope": 2})


def test_a_flow_with_var_keyword_receives_them_flat():
    @flow
    def foo(x, y, **foo_kwargs):
        return x, y, foo_kwargs, dict(get_run_context().flow_run.parameters)

    x, y, extra, parameters = foo(1, 2, foobar={"a": 1}, z=3)
    assert (x, y, extra) == (1, 2, {"foobar": {"a": 1}, "z": 3})
    assert parameters == {"x": 1, "y": 2, "foo_kwargs": {"foobar": {"a": 1}, "z": 3}}

    @flow
    def star(first, *rest, **kw):
        return first, rest, kw

    assert star(1, 2, 3, k=4) == (1, (2, 3), {"k": 4})


class Model:
    factor = 10

    def __init__(self, n: int) -> None:
        self.n = n

    @flow
    def scale(self, x: int) -> tuple[int, dict]:
        return self.n * x, dict(get_run_context().flow_run.parameters)

    @classmethod
    @flow
    def class_above(cls, x: int) -> int:
        return cls.factor * x

    @flow
    @classmethod
    def class_below(cls, x: int) -> int:
        return cls.factor + x

    @staticmethod
    @flow
    def static_above(x: int) -> int:
        return x + 1

    @flow
    @staticmethod
    def static_below(x: int) -> int:
        return x + 2


def test_flow_on_an_instance_method_excludes_self():
    model = Model(3)
    value, parameters = model.scale("4")  # validated and coerced: x is an int
    assert value == 12 and parameters == {"x": 4}
    state = model.scale(5, return_state=True)
    assert state.is_completed() and state.result()[0] == 15
    assert Model.scale.name == "scale"


def test_flow_on_classmethods_and_staticmethods_above_or_below():
    model = Model(1)
    assert Model.class_above(2) == 20 and model.class_above(3) == 30
    assert Model.class_below(2) == 12 and model.class_below(3) == 13
    assert Model.static_above(1) == 2 and model.static_above(2) == 3
    assert Model.static_below(1) == 3 and model.static_below(2) == 4


def test_with_options_keeps_a_method_flow_bound():
    model = Model(2)
    renamed = model.scale.with_options(name="renamed")
    assert renamed.name == "renamed" and renamed(3)[0] == 6
    assert Model.class_below.with_options(retries=1)(1) == 11


@task
def ok_task() -> int:
    return 1


@task
def bad_task() -> int:
    raise ValueError("upstream of a subflow")


@flow
def child(x: int = 0) -> str:
    return f"child ran {x}"


def test_wait_for_on_a_subflow_call(runner):
    @flow(task_runner=runner)
    def parent():
        good = ok_task.submit()
        ran = child(1, wait_for=[good])
        bad = bad_task.submit()
        blocked = child(2, wait_for=[bad], return_state=True)
        tolerant = child(3, wait_for=[allow_failure(bad)])
        return ran, blocked, tolerant

    ran, blocked, tolerant = parent()
    assert ran == "child ran 1"
    assert isinstance(blocked, State) and blocked.name == "NotReady"
    assert "bad_task" in blocked.message and "upstream of a subflow" in blocked.message
    assert tolerant == "child ran 3"


def test_call_arguments_replays_recorded_parameters():
    from fluvial.orchestration.parameters import call_arguments

    def fn(a, *rest, b=1, **extra):
        return a, rest, b, extra

    args, kwargs = call_arguments(fn, {"a": 1, "rest": (2,), "extra": {"c": 3}, "d": 4})
    assert fn(*args, **kwargs) == (1, (2,), 1, {"c": 3, "d": 4})
