"""What every out-of-thread runner must do: crashes, serialization errors, data locality."""

from __future__ import annotations

import ctypes
import os
import signal
import threading
import tracemalloc
from pathlib import Path

import pytest

from fluvial import StateType, flow, task
from fluvial import wait as fluvial_wait
from fluvial.exceptions import SerializationFailure

REMOTE = ["processes", "dask", "ray"]


@pytest.fixture(params=REMOTE)
def remote_runner(request, session_runner):
    """The session's started runner of each out-of-process kind."""
    return session_runner(request.param)


@pytest.fixture(params=["dask", "ray"])
def cluster_runner(request, session_runner):
    """The session's started cluster runners: results stay in the cluster."""
    return session_runner(request.param)


@task
def crash_once(path: str) -> str:
    if not os.path.exists(path):
        open(path, "w").close()
        os._exit(13)
    return "survived"


@task
def crash_always(how: str) -> None:
    if how == "exit":
        os._exit(7)
    if how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    ctypes.string_at(0)  # segfault


@task
def inc(x: int) -> int:
    return x + 1


@pytest.mark.parametrize("how", ["exit", "sigkill", "segfault"])
def test_worker_death_ends_crashed_and_runner_goes_on(remote_runner, how):
    @flow(task_runner=remote_runner)
    def crashing():
        dead = crash_always.submit(how)
        dead.wait()
        after = inc.map(range(5)).result()
        return dead.state.type, dead.state.message, after

    state_type, message, after = crashing()
    assert state_type is StateType.CRASHED
    assert type(remote_runner).__name__ in message
    assert after == [1, 2, 3, 4, 5]


def test_worker_death_is_retried_when_retries_are_left(remote_runner, tmp_path: Path):
    marker = tmp_path / "crashed-once"

    @flow(task_runner=remote_runner)
    def crashing():
        return crash_once.with_options(retries=1).submit(str(marker)).result()

    assert crashing() == "survived"


def test_unpicklable_argument_names_task_and_parameter(remote_runner):
    lock = threading.Lock()

    @task
    def uses_lock(n: int, guard) -> int:
        return n

    @flow(task_runner=remote_runner)
    def bad():
        uses_lock.submit(1, lock)

    with pytest.raises(SerializationFailure) as info:
        bad()
    assert "'uses_lock'" in str(info.value) and "'guard'" in str(info.value)


def test_results_move_worker_to_worker_not_through_the_driver(cluster_runner):
    size = 10 * 1024 * 1024

    @task
    def big() -> bytes:
        return b"x" * size

    @task
    def measure(blob: bytes, i: int) -> int:
        return len(blob) + i

    @flow(task_runner=cluster_runner)
    def fan_out():
        blob = big.submit()
        return [f.result() for f in [measure.submit(blob, i) for i in range(20)]]

    tracemalloc.start()
    try:
        assert fan_out() == [size + i for i in range(20)]
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size // 2, f"the driver allocated {peak} bytes: the 10 MB result went through it"


def test_unpicklable_return_value_fails_naming_it(remote_runner):
    @task
    def returns_lock():
        return threading.Lock()

    @flow(task_runner=remote_runner)
    def bad_result():
        future = returns_lock.submit()
        downstream = inc.submit(future)
        fluvial_wait([future, downstream])
        return (future.state.type, future.state.message, downstream.state.name)

    state_type, message, downstream = bad_result()
    assert state_type is StateType.FAILED
    assert "'returns_lock'" in message and "return value" in message
    assert downstream == "NotReady"
