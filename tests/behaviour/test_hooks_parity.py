"""Prefect's state hooks: ``on_running`` (tasks and flows), ``on_cancellation`` and
``on_crashed`` (flows), the decorator forms, ``functools.partial`` hooks, and the state a
hook receives being the state the caller gets."""

from __future__ import annotations

import functools
import json
from pathlib import Path

import pytest

from fluvial import flow, task
from fluvial.states import Cancelled, State


def note(path: str, _task: object, run: object, state: State, **extra: object) -> None:
    """A hook usable on every runner: it appends what it saw to a file."""
    with open(path, "a") as out:
        out.write(json.dumps({"state": state.name, "run": run.name, **extra}) + "\n")


def seen(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def test_task_hook_decorators_register_and_return_the_hook(runner, tmp_path):
    log = tmp_path / "hooks.jsonl"

    @task
    def work(x: int) -> int:
        if x < 0:
            raise ValueError("negative")
        return x

    completion = functools.partial(note, str(log), kind="completion")
    failure = functools.partial(note, str(log), kind="failure")
    running = functools.partial(note, str(log), kind="running")
    assert work.on_completion(completion) is completion
    assert work.on_failure(failure) is failure
    assert work.on_running(running) is running

    @flow(task_runner=runner)
    def runs():
        work.submit(1).wait()
        work.submit(-1).wait()

    runs()
    kinds = sorted((e["kind"], e["state"]) for e in seen(log))
    assert kinds == [("completion", "Completed"), ("failure", "Failed"),
                     ("running", "Running"), ("running", "Running")]


def test_partial_hooks_receive_their_extra_keyword_arguments(runner, tmp_path):
    log = tmp_path / "hooks.jsonl"

    @task(on_completion=[functools.partial(note, str(log), channel="#data", retries=2)])
    def work() -> int:
        return 1

    @flow(task_runner=runner)
    def runs():
        return work.submit().result()

    assert runs() == 1
    [entry] = seen(log)
    assert entry["channel"] == "#data" and entry["retries"] == 2
    assert entry["run"].startswith("work-")


def test_on_running_is_called_for_each_attempt(runner, tmp_path):
    log = tmp_path / "hooks.jsonl"
    marker = tmp_path / "tried"

    @task(retries=1, on_running=[functools.partial(note, str(log))])
    def flaky(path: str) -> str:
        if not Path(path).exists():
            Path(path).write_text("once")
            raise RuntimeError("first attempt fails")
        return "second"

    @flow(task_runner=runner)
    def runs():
        return flaky.submit(str(marker)).result()

    assert runs() == "second"
    assert [e["state"] for e in seen(log)] == ["Running", "Running"]


def test_task_hook_state_is_the_state_the_caller_gets():
    received = []

    @task
    def work() -> int:
        return 5

    @work.on_completion
    def keep(_task, _run, state):
        received.append(state)

    @flow
    def runs():
        called = work(return_state=True)
        future = work.submit()
        future.wait()
        return called, future.state

    called, submitted = runs()
    assert called is received[0]
    assert submitted is received[1]


def test_flow_hooks_decorators_and_state_identity():
    events = []

    @flow
    def good():
        return 1

    @good.on_running
    def on_running(_flow, run, state):
        events.append(("running", state.name))

    @good.on_completion
    def on_completion(_flow, run, state):
        events.append(("completion", state))

    assert callable(on_running) and callable(on_completion)
    state = good(return_state=True)
    assert events[0] == ("running", "Running")
    assert events[1][0] == "completion" and events[1][1] is state


def test_flow_on_failure_on_crashed_and_on_cancellation():
    events = []

    def record(kind):
        return lambda _flow, _run, state: events.append((kind, state.type.value))

    hooks = dict(on_completion=[record("completion")], on_failure=[record("failure")],
                 on_crashed=[record("crashed")], on_cancellation=[record("cancellation")])

    @flow(**hooks)
    def fails():
        raise ValueError("x")

    @flow(**hooks)
    def interrupted():
        raise KeyboardInterrupt

    @flow(**hooks)
    def gives_up():
        return Cancelled("stopped on purpose")

    assert fails(return_state=True).is_failed()
    with pytest.raises(KeyboardInterrupt):
        interrupted()
    assert gives_up(return_state=True).is_cancelled()
    assert events == [("failure", "FAILED"), ("crashed", "CRASHED"),
                      ("cancellation", "CANCELLED")]


def test_a_flow_cancelled_through_the_record_calls_on_cancellation():
    from fluvial.context import get_run_context
    from fluvial.flow_runs import cancel_flow_run
    from fluvial.store import get_recorder

    events = []

    @flow(on_cancellation=[lambda _f, _r, state: events.append(state)],
          on_crashed=[lambda _f, _r, state: events.append(("crashed", state))])
    def cancelled_while_running():
        get_recorder().flush()
        cancel_flow_run(get_run_context().flow_run.id)  # this process: marked Cancelling
        raise KeyboardInterrupt  # what the signal would raise in a worker's flow process

    with pytest.raises(KeyboardInterrupt):
        cancelled_while_running()
    [state] = events
    assert isinstance(state, State) and state.is_cancelled()


def test_hooks_given_to_with_options_and_registered_ones_carry_over():
    calls = []

    @task
    def work() -> int:
        return 1

    @work.on_completion
    def first(*_):
        calls.append("first")

    copy = work.with_options(name="copy")
    assert copy.on_completion_hooks == [first]
    copy()
    assert calls == ["first"]
