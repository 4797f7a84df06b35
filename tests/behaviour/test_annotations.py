"""``allow_failure``, ``quote`` and ``opaque`` behave as in
``prefect.utilities.annotations``, the same on every runner."""

from __future__ import annotations

import warnings

import pytest

from fluvial import allow_failure, flow, opaque, quote, task, unmapped
from fluvial.annotations import NotSet, Quote


@task
def boom(message: str = "upstream broke") -> int:
    raise ValueError(message)


@task
def one() -> int:
    return 1


@task
def describe(x: object) -> str:
    if isinstance(x, BaseException):
        return f"got {type(x).__name__}: {x}"
    return f"got {x!r}"


@task
def describe_all(xs: list) -> list[str]:
    return [type(x).__name__ if isinstance(x, BaseException) else repr(x) for x in xs]


@task
def after() -> str:
    return "ran"


def test_allow_failure_runs_the_downstream_with_the_exception(runner):
    @flow(task_runner=runner)
    def tolerant():
        bad = boom.submit()
        good = one.submit()
        direct = describe.submit(allow_failure(bad)).result()
        in_list = describe_all.submit(allow_failure([good, bad])).result()
        called = describe(allow_failure(bad))
        strict = describe.submit(bad)
        strict.wait()
        return direct, in_list, called, strict.state.name

    direct, in_list, called, strict = tolerant()
    assert direct == "got ValueError: upstream broke"
    assert in_list == ["1", "ValueError"]
    assert called == "got ValueError: upstream broke"
    assert strict == "NotReady"  # without the annotation the downstream does not run


def test_allow_failure_in_wait_for(runner):
    @flow(task_runner=runner)
    def ordered():
        bad = boom.submit()
        tolerant = after.submit(wait_for=[allow_failure(bad)])
        strict = after.submit(wait_for=[bad])
        strict.wait()
        return tolerant.result(), strict.state.name

    assert ordered() == ("ran", "NotReady")


def test_allow_failure_on_a_completed_upstream_passes_its_result(runner):
    @flow(task_runner=runner)
    def fine():
        return describe.submit(allow_failure(one.submit())).result()

    assert fine() == "got 1"


def test_opaque_future_is_resolved_and_quote_passes_values_as_is(runner):
    @flow(task_runner=runner)
    def wrapped():
        future = one.submit()
        resolved = describe.submit(opaque(future)).result()
        quoted = describe.submit(quote({"big": [1, 2, 3]})).result()
        return resolved, quoted

    assert wrapped() == ("got 1", "got {'big': [1, 2, 3]}")


def test_quote_and_opaque_do_not_look_inside_a_container():
    seen = {}

    @task
    def keep(xs: list) -> None:
        seen["types"] = [type(x).__name__ for x in xs]

    @flow
    def wrapped():
        future = one.submit()
        keep(quote([future]))
        quoted = seen["types"]
        keep(opaque([future]))
        return quoted, seen["types"]

    assert wrapped() == (["Future"], ["Future"])


def test_annotation_helpers_match_prefect():
    value = [1, 2]
    assert quote(value).unquote() is value
    assert quote(value).unwrap() is value
    assert unmapped("x")[17] == "x"
    assert allow_failure(1).rewrap(2) == allow_failure(2)
    assert quote(1) != unmapped(1)
    assert repr(allow_failure(3)) == "allow_failure(3)"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(DeprecationWarning):
            Quote(1)
    assert NotSet is not None
