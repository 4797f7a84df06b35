"""Retries, hooks and timeouts run on the worker through the one engine, on every runner."""

from __future__ import annotations

from pathlib import Path

from fluvial import StateType, flow, task


def _count_lines(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_retries_until_success(runner, tmp_path: Path):
    attempts = tmp_path / "attempts"

    @task(retries=3, retry_delay_seconds=0)
    def flaky(path: str) -> str:
        with open(path, "a") as fh:
            fh.write("x\n")
        if len(open(path).read().split()) < 3:
            raise RuntimeError("not yet")
        return "done"

    @flow(task_runner=runner)
    def retrying():
        return flaky.submit(str(attempts)).result()

    assert retrying() == "done"
    assert len(_count_lines(attempts)) == 3


def test_retries_exhausted_keeps_last_exception(runner, tmp_path: Path):
    attempts = tmp_path / "attempts"

    @task(retries=2)
    def always_fails(path: str) -> None:
        with open(path, "a") as fh:
            fh.write("x\n")
        raise KeyError(f"attempt {len(open(path).read().split())}")

    @flow(task_runner=runner)
    def retrying():
        future = always_fails.submit(str(attempts))
        future.wait()
        return future.state.type, future.state.data

    state_type, error = retrying()
    assert state_type is StateType.FAILED
    assert isinstance(error, KeyError) and "attempt 3" in str(error)
    assert len(_count_lines(attempts)) == 3


def test_retry_condition_stops_retries(runner, tmp_path: Path):
    attempts = tmp_path / "attempts"

    def only_on_runtime_error(task, task_run, state) -> bool:
        return isinstance(state.data, RuntimeError)

    @task(retries=5, retry_condition_fn=only_on_runtime_error)
    def fails_with_value_error(path: str) -> None:
        with open(path, "a") as fh:
            fh.write("x\n")
        raise ValueError("do not retry me")

    @flow(task_runner=runner)
    def retrying():
        future = fails_with_value_error.submit(str(attempts))
        future.wait()
        return future.state.type

    assert retrying() is StateType.FAILED
    assert len(_count_lines(attempts)) == 1


def test_hooks_run_once_per_final_state(runner, tmp_path: Path):
    record = tmp_path / "hooks"

    def on_done(task, task_run, state):
        with open(record, "a") as fh:
            fh.write(f"{task.name}:{state.name}\n")

    def broken_hook(task, task_run, state):
        raise RuntimeError("hooks must not change the state")

    # the broken hook first: the hooks after it still run, and the state stands
    @task(on_completion=[broken_hook, on_done], on_failure=[broken_hook, on_done], retries=1)
    def maybe(x: int) -> int:
        if x < 0:
            raise ValueError("negative")
        return x

    @flow(task_runner=runner)
    def hooked():
        ok, bad = maybe.submit(1), maybe.submit(-1)
        ok.wait()
        bad.wait()
        return ok.state.type, ok.result(), bad.state.type

    assert hooked() == (StateType.COMPLETED, 1, StateType.FAILED)
    assert sorted(_count_lines(record)) == ["maybe:Completed", "maybe:Failed"]


def test_timeout_ends_timed_out(runner):
    @task(timeout_seconds=0.3)
    def sleepy() -> str:
        import time

        time.sleep(5)
        return "too late"

    @task(timeout_seconds=0.3)
    async def async_sleepy() -> str:
        import asyncio

        await asyncio.sleep(5)
        return "too late"

    @flow(task_runner=runner)
    def timed():
        futures = [sleepy.submit(), async_sleepy.submit()]
        for f in futures:
            f.wait()
        return [(f.state.type, f.state.name, f.state.message) for f in futures]

    for state_type, name, message in timed():
        assert state_type is StateType.FAILED
        assert name == "TimedOut"
        assert "0.3" in message


def test_async_tasks(runner):
    @task
    async def async_double(x: int) -> int:
        import asyncio

        await asyncio.sleep(0)
        return 2 * x

    @flow(task_runner=runner)
    def with_async():
        return async_double.map(range(5)).result()

    assert with_async() == [0, 2, 4, 6, 8]
