"""Tasks: the decorator, option validation, calling, retries, timeouts, hooks, names,
log_prints and tags."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest

import fluvial
from fluvial import flow, get_run_context, task
from fluvial.runs import TaskRun
from fluvial.states import State
from fluvial.tasks import Task, exponential_backoff

# -- the decorator ---------------------------------------------------------------


def test_bare_decorator_on_a_sync_function():
    @task
    def add(x, y):
        return x + y

    assert isinstance(add, Task)
    assert add.name == "add"
    assert add(1, 2) == 3


def test_called_decorator_with_and_without_options():
    @task()
    def plain():
        return "plain"

    @task(name="custom-name", description="does things", version="1.2", tags=["a", "b"])
    def named():
        return "named"

    assert isinstance(plain, Task) and plain.name == "plain"
    assert named.name == "custom-name"
    assert named.description == "does things"
    assert named.version == "1.2"
    assert set(named.tags) == {"a", "b"}
    assert plain() == "plain" and named() == "named"


def test_description_defaults_to_the_docstring():
    @task
    def documented():
        """Explains itself."""

    assert documented.description == "Explains itself."


def test_bare_decorator_on_an_async_function():
    @task
    async def double(x):
        await asyncio.sleep(0)
        return 2 * x

    assert isinstance(double, Task)
    assert double(21) == 42


def test_called_decorator_on_an_async_function_inside_a_flow():
    @task(retries=1)
    async def triple(x):
        return 3 * x

    @flow
    def uses_async_task():
        return triple(5), triple.submit(2).result()

    assert uses_async_task() == (15, 6)


# -- option validation ----------------------------------------------------------------


def noop():
    return None


@pytest.mark.parametrize(
    ("options", "error", "option_name"),
    [
        ({"retries": -1}, ValueError, "retries"),
        ({"retries": "3"}, TypeError, "retries"),
        ({"retries": 1.5}, TypeError, "retries"),
        ({"timeout_seconds": 0}, ValueError, "timeout_seconds"),
        ({"timeout_seconds": -2}, ValueError, "timeout_seconds"),
        ({"retry_delay_seconds": -1}, ValueError, "retry_delay_seconds"),
        ({"retry_delay_seconds": [1, "x"]}, TypeError, "retry_delay_seconds"),
        ({"retry_jitter_factor": -0.5}, ValueError, "retry_jitter_factor"),
        ({"retry_condition_fn": 42}, TypeError, "retry_condition_fn"),
        ({"task_run_name": 42}, TypeError, "task_run_name"),
        ({"on_completion": [42]}, TypeError, "on_completion"),
        ({"on_failure": ["not a hook"]}, TypeError, "on_failure"),
    ],
    ids=lambda v: str(v) if not isinstance(v, type) else v.__name__,
)
def test_invalid_option_is_a_clear_error_naming_task_and_option(options, error, option_name):
    with pytest.raises(error) as info:
        task(name="validated", **options)(noop)
    message = str(info.value)
    assert "validated" in message
    assert option_name in message


def test_with_options_rejects_an_unknown_option_naming_it():
    base = task(name="base")(noop)
    with pytest.raises(TypeError) as info:
        base.with_options(retires=3)
    assert "base" in str(info.value) and "retires" in str(info.value)


def test_with_options_validates_the_new_values():
    base = task(name="base")(noop)
    with pytest.raises(ValueError, match="retries"):
        base.with_options(retries=-1)


def test_with_options_returns_a_copy_and_leaves_the_original_unchanged():
    @task(name="orig", retries=1, tags=["x"])
    def orig():
        return "ran"

    copy = orig.with_options(name="copy", retries=4, timeout_seconds=5)
    assert copy is not orig
    assert isinstance(copy, Task)
    assert (copy.name, copy.retries, copy.timeout_seconds) == ("copy", 4, 5)
    assert set(copy.tags) == {"x"}
    assert copy.fn is orig.fn
    assert (orig.name, orig.retries, orig.timeout_seconds) == ("orig", 1, None)
    assert copy() == "ran"


def test_with_options_keeps_the_name_when_not_given():
    @task
    def keeps_name():
        return None

    assert keeps_name.with_options(retries=2).name == "keeps_name"


# -- calling --------------------------------------------------------------------------


def test_calling_outside_a_flow_returns_the_result_like_the_plain_function():
    @task
    def power(base, exp=2):
        return base**exp

    assert power(3) == 9
    assert power(2, exp=5) == 32
    assert power.fn(3) == 9


def test_calling_outside_a_flow_raises_the_original_exception():
    @task
    def bad():
        raise LookupError("plain failure")

    with pytest.raises(LookupError, match="plain failure"):
        bad()


def test_calling_outside_a_flow_still_retries():
    calls = []

    @task(retries=2)
    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("try again")
        return "ok"

    assert flaky() == "ok"
    assert len(calls) == 3


def test_calling_inside_a_flow_returns_the_result_or_the_state():
    @task
    def square(x):
        return x * x

    seen = {}

    @flow
    def calls_it():
        seen["state"] = square(5, return_state=True)  # a flow would resolve a returned state
        return square(4)

    assert calls_it() == 16
    state = seen["state"]
    assert isinstance(state, State)
    assert state.is_completed() and state.result() == 25


def test_calling_with_wrong_arguments_names_the_task():
    @task
    def needs_two(a, b):
        return a + b

    with pytest.raises(TypeError, match="needs_two"):
        needs_two(1)


# -- retries --------------------------------------------------------------------------


def test_retry_delay_as_a_number_applies_to_every_retry():
    t = task(retries=3, retry_delay_seconds=0.5)(noop)
    assert [t.retry_delay_for(a) for a in (1, 2, 3)] == [0.5, 0.5, 0.5]


def test_retry_delay_as_a_list_uses_the_last_value_for_later_retries():
    t = task(retries=4, retry_delay_seconds=[1, 2])(noop)
    assert [t.retry_delay_for(a) for a in (1, 2, 3, 4)] == [1, 2, 2, 2]
    t = task(retries=3, retry_delay_seconds=[1, 5, 10])(noop)
    assert [t.retry_delay_for(a) for a in (1, 2, 3)] == [1, 5, 10]


def test_exponential_backoff_computes_doubling_delays():
    assert exponential_backoff(backoff_factor=2)(4) == [2, 4, 8, 16]
    t = task(retries=3, retry_delay_seconds=exponential_backoff(backoff_factor=0.5))(noop)
    assert [t.retry_delay_for(a) for a in (1, 2, 3)] == [0.5, 1.0, 2.0]


def test_exponential_backoff_rejects_a_negative_factor():
    with pytest.raises(ValueError, match="backoff_factor"):
        exponential_backoff(backoff_factor=-1)


def test_retry_jitter_keeps_delays_within_the_factor():
    t = task(retries=2, retry_delay_seconds=10, retry_jitter_factor=0.5)(noop)
    delays = [t.retry_delay_for(1) for _ in range(300)]
    assert all(5.0 <= d <= 15.0 for d in delays)
    assert len(set(delays)) > 1  # it is actually jittered
    assert min(delays) < 10 < max(delays)


def test_retries_with_a_delay_rerun_the_task_after_waiting():
    attempts: list[float] = []

    @task(retries=2, retry_delay_seconds=0.1)
    def flaky():
        attempts.append(time.monotonic())
        if len(attempts) < 3:
            raise ValueError("not yet")
        return len(attempts)

    @flow
    def runs_flaky():
        return flaky()

    assert runs_flaky() == 3
    gaps = [b - a for a, b in zip(attempts, attempts[1:], strict=False)]
    assert all(gap >= 0.09 for gap in gaps)


def test_retry_condition_fn_receives_the_task_its_run_and_the_state():
    seen = []
    attempts = []

    def only_value_errors(tsk, task_run, state):
        seen.append((tsk, task_run, state))
        return isinstance(state.result(raise_on_failure=False), ValueError)

    @task(retries=5, retry_condition_fn=only_value_errors)
    def fails_then_changes():
        attempts.append(1)
        if len(attempts) == 1:
            raise ValueError("retry me")
        raise TypeError("do not retry me")

    state = fails_then_changes(return_state=True)
    assert state.is_failed()
    assert len(attempts) == 2  # the condition stopped the retries at the TypeError
    with pytest.raises(TypeError):
        state.result()
    assert len(seen) == 2
    tsk, task_run, first_state = seen[0]
    assert tsk.name == "fails_then_changes"
    assert isinstance(task_run, TaskRun)
    assert isinstance(first_state, State) and first_state.is_failed()


# -- timeouts -------------------------------------------------------------------------


def _assert_timed_out_promptly(state: State, started: float) -> None:
    elapsed = time.monotonic() - started
    assert state.name == "TimedOut"
    assert state.is_failed()
    assert elapsed < 2.0, f"timed out after {elapsed:.2f} s for a 0.2 s deadline"
    with pytest.raises(TimeoutError):
        state.result()


def test_timeout_of_a_busy_looping_sync_task():
    @task(timeout_seconds=0.2)
    def spin():
        while True:
            pass

    started = time.monotonic()
    state = spin(return_state=True)
    _assert_timed_out_promptly(state, started)


def test_timeout_of_a_sleeping_sync_task():
    @task(timeout_seconds=0.2)
    def sleeper():
        time.sleep(3)
        return "woke"

    started = time.monotonic()
    state = sleeper(return_state=True)
    _assert_timed_out_promptly(state, started)


def test_a_timed_out_task_inside_a_flow_fails_the_flow_with_a_timeout_error():
    @task(timeout_seconds=0.2)
    def sleeper():
        time.sleep(3)

    @flow
    def runs_sleeper():
        sleeper()

    started = time.monotonic()
    state = runs_sleeper(return_state=True)
    assert state.is_failed()
    assert isinstance(state.result(raise_on_failure=False), TimeoutError)
    assert time.monotonic() - started < 2.0


def test_timeout_of_an_async_task():
    @task(timeout_seconds=0.2)
    async def slow():
        await asyncio.sleep(5)
        return "done"

    started = time.monotonic()
    state = slow(return_state=True)
    _assert_timed_out_promptly(state, started)


def test_timeout_of_a_submitted_task():
    @task(timeout_seconds=0.2)
    def spin():
        while True:
            pass

    @flow
    def submits():
        future = spin.submit()
        future.wait()
        return future.state

    started = time.monotonic()
    state = submits(return_state=True)
    assert state.is_failed()  # the returned TimedOut state fails the flow
    assert time.monotonic() - started < 2.0


def test_a_task_that_finishes_within_its_timeout_completes():
    @task(timeout_seconds=5)
    def quick(x):
        return x + 1

    assert quick(1) == 2


# -- hooks -----------------------------------------------------------------------------


def test_on_completion_hook_called_once_with_task_task_run_and_state():
    calls = []

    @task(on_completion=[lambda t, tr, s: calls.append((t, tr, s))])
    def succeeds(x):
        return x

    @flow
    def runs():
        return succeeds(3)

    assert runs() == 3
    assert len(calls) == 1
    tsk, task_run, state = calls[0]
    assert isinstance(tsk, Task) and tsk.name == "succeeds"
    assert isinstance(task_run, TaskRun) and isinstance(task_run.id, uuid.UUID)
    assert state.is_completed() and state.result() == 3


def test_a_raising_hook_is_logged_and_does_not_change_the_state(caplog):
    def broken_hook(tsk, task_run, state):
        raise RuntimeError("hook exploded")

    other = []

    @task(on_completion=[broken_hook, lambda t, tr, s: other.append(s)])
    def fine():
        return "fine"

    caplog.set_level(logging.INFO)
    state = fine(return_state=True)
    assert state.is_completed() and state.result() == "fine"
    assert len(other) == 1  # later hooks still run
    messages = [r.getMessage() for r in caplog.records]
    assert any("broken_hook" in m for m in messages)
    assert any(r.exc_info and "hook exploded" in str(r.exc_info[1]) for r in caplog.records)


# -- task run names ---------------------------------------------------------------------


def test_task_run_name_template_of_parameters():
    @task(task_run_name="process-{customer}-{n}")
    def process(customer, n=1):
        return get_run_context().task_run.name

    @flow
    def runs():
        return process("acme"), process.submit("zeta", n=3).result()

    assert runs() == ("process-acme-1", "process-zeta-3")


def test_task_run_name_callable():
    @task(task_run_name=lambda: "from-a-callable")
    def named():
        return get_run_context().task_run.name

    assert named() == "from-a-callable"


def test_default_task_run_name_starts_with_the_task_name():
    @task
    def unnamed():
        return get_run_context().task_run.name

    assert unnamed().startswith("unnamed")


# -- log_prints ---------------------------------------------------------------------------


def test_log_prints_sends_print_to_the_fluvial_loggers_not_stdout(caplog, capsys):
    @task(log_prints=True)
    def chatty():
        print("hello from the task", 42)
        return 1

    caplog.set_level(logging.INFO)

    @flow
    def runs():
        return chatty()

    assert runs() == 1
    records = [r for r in caplog.records if "hello from the task 42" in r.getMessage()]
    assert records, "print output was not logged"
    assert all(r.name.startswith("fluvial") for r in records)
    assert "hello from the task" not in capsys.readouterr().out


def test_without_log_prints_print_goes_to_stdout(caplog, capsys):
    @task
    def quiet_printer():
        print("plain print output")

    caplog.set_level(logging.INFO)

    @flow
    def runs():
        quiet_printer()

    runs()
    assert "plain print output" in capsys.readouterr().out
    assert not any("plain print output" in r.getMessage() for r in caplog.records)


def test_print_to_another_file_is_not_captured(caplog, capsys):
    import sys

    @task(log_prints=True)
    def to_stderr():
        print("to stderr", file=sys.stderr)

    caplog.set_level(logging.INFO)
    to_stderr()
    assert "to stderr" in capsys.readouterr().err


# -- tags -----------------------------------------------------------------------------------


def test_tags_from_the_decorator_and_the_tags_context_manager():
    @task(tags=["from-decorator"])
    def tagged():
        return set(get_run_context().task_run.tags)

    @flow
    def runs():
        plain = tagged()
        with fluvial.tags("ctx-a", "ctx-b"):
            inside_call = tagged()
            inside_submit = tagged.submit().result()
            with fluvial.tags("nested"):
                nested = tagged()
        after = tagged()
        return plain, inside_call, inside_submit, nested, after

    plain, inside_call, inside_submit, nested, after = runs()
    assert plain == {"from-decorator"}
    assert inside_call == {"from-decorator", "ctx-a", "ctx-b"}
    assert inside_submit == {"from-decorator", "ctx-a", "ctx-b"}
    assert nested == {"from-decorator", "ctx-a", "ctx-b", "nested"}
    assert after == {"from-decorator"}


def test_tags_context_manager_rejects_empty_or_non_string_tags():
    with pytest.raises(ValueError), fluvial.tags(""):
        pass
    with pytest.raises(ValueError), fluvial.tags(3):  # type: ignore[arg-type]
        pass


def test_async_tasks_leave_no_event_loop_for_the_garbage_collector(tmp_path):
    """Each pool thread runs async tasks on its own event loop; the loop is closed when
    the thread is gone, not found unclosed by the garbage collector at exit (which
    printed "Exception ignored ... Invalid file descriptor")."""
    import subprocess
    import sys
    import textwrap

    script = tmp_path / "async_flow.py"
    script.write_text(textwrap.dedent("""
        import asyncio
        from fluvial import flow, task

        @task
        async def bump(x):
            return x + 1

        @task
        def double(x):
            return x * 2

        @flow
        async def mixed():
            state = await bump(1, return_state=True)
            double.submit(3).wait()
            return state.result() + double(2)

        print(asyncio.run(mixed()))
    """))
    done = subprocess.run([sys.executable, "-W", "error::ResourceWarning", str(script)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "6"
    assert "Exception ignored" not in done.stderr, done.stderr
