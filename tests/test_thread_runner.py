"""ThreadPoolTaskRunner: argument checks, long dependency chains on one worker, nested
submission and use after shutdown."""

from __future__ import annotations

import threading

import pytest

from fluvial import flow, task
from fluvial.orchestration.submission import prepare
from fluvial.runners import ThreadPoolTaskRunner
from fluvial.runs import TaskRun

CHAIN = 10_000


@task
def inc(x):
    return x + 1


@task
def boom():
    raise ValueError("first link broke")


def test_max_workers_must_be_positive():
    with pytest.raises(ValueError, match="max_workers"):
        ThreadPoolTaskRunner(max_workers=0)
    with pytest.raises(ValueError, match="max_workers"):
        ThreadPoolTaskRunner(max_workers=-3)


def test_max_workers_must_be_an_int():
    with pytest.raises(TypeError, match="max_workers"):
        ThreadPoolTaskRunner(max_workers="2")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="max_workers"):
        ThreadPoolTaskRunner(max_workers=2.0)  # type: ignore[arg-type]


def test_defaults_and_duplicate():
    runner = ThreadPoolTaskRunner()
    assert runner.max_workers >= 1
    copy = ThreadPoolTaskRunner(max_workers=3).duplicate()
    assert isinstance(copy, ThreadPoolTaskRunner)
    assert copy.max_workers == 3
    assert not copy.started


@pytest.fixture
def no_store(monkeypatch: pytest.MonkeyPatch) -> None:
    """The run record is not under test here; 10 000 runs need not be written."""
    monkeypatch.setenv("FLUVIAL_STORE", "off")


def test_a_chain_of_ten_thousand_dependent_submits_on_one_worker(no_store):
    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def chain():
        future = inc.submit(0)
        for _ in range(CHAIN - 1):
            future = inc.submit(future)
        return future.result(timeout=120)

    assert chain() == CHAIN


def test_a_chain_of_ten_thousand_whose_first_task_fails_ends_not_ready(no_store):
    seen = {}

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def chain():
        first = boom.submit()
        futures = [first]
        for _ in range(CHAIN - 1):
            futures.append(inc.submit(futures[-1]))
        futures[-1].wait(120)
        states = [f.state for f in futures]
        seen["names"] = {s.name for s in states[1:]}
        seen["first"] = states[0]
        seen["last"] = states[-1]

    state = chain(return_state=True)
    assert state.is_completed(), state.message  # every failure was looked at
    assert seen["first"].name == "Failed"
    assert seen["names"] == {"NotReady"}
    assert "'inc'" in seen["last"].message
    # a NotReady message names its upstream; it does not nest the whole chain's messages
    assert len(seen["last"].message) < 2_000
    with pytest.raises(Exception) as info:
        seen["last"].result()
    assert not isinstance(info.value, RecursionError)


def test_nested_submission_from_inside_a_task():
    @task
    def outer(x):
        inner = inc.submit(x)
        return inner.result(timeout=30) * 10

    @task
    def returns_inner_future(x):
        return inc.submit(x)

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=4))
    def nests():
        direct = outer.submit(1)
        mapped = outer.map([2])
        passed_back = returns_inner_future.submit(41)
        return direct.result(), mapped.result(), passed_back.result()

    assert nests() == (20, [30], 42)


def test_nested_submission_waiting_on_its_result_with_one_worker():
    @task
    def outer(x):
        return inc.submit(x).result(timeout=3) * 10  # a deadlocked pool times out here

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=1))
    def nests():
        return outer.submit(1).result()

    assert nests() == 20


def test_a_task_returning_a_nested_future_with_one_worker():
    runner = ThreadPoolTaskRunner(max_workers=1)

    @task
    def returns_inner_future(x):
        return inc.submit(x)

    @flow(task_runner=runner)
    def nests():
        future = returns_inner_future.submit(41)
        try:
            return future.result(timeout=3)
        finally:
            if not future.done():  # deadlocked: run the queued inner task here to unblock
                runner._drain()

    assert nests() == 42


def test_tasks_run_on_the_pool_threads_not_the_flow_thread():
    @task
    def thread_name():
        return threading.current_thread().name

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def where():
        return thread_name.submit().result(), threading.current_thread().name

    worker, flow_thread = where()
    assert worker != flow_thread


def test_max_workers_bounds_concurrency():
    lock = threading.Lock()
    active = [0]
    peak = [0]
    release = threading.Event()
    arrived = threading.Semaphore(0)

    @task
    def occupy(i):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        arrived.release()
        release.wait(10)
        with lock:
            active[0] -= 1
        return i

    @flow(task_runner=ThreadPoolTaskRunner(max_workers=2))
    def bounded():
        futures = occupy.map(range(6))
        assert arrived.acquire(timeout=10) and arrived.acquire(timeout=10)
        extra_started = arrived.acquire(timeout=0.2)
        release.set()
        return futures.result(), extra_started

    try:
        results, extra_started = bounded()
    finally:
        release.set()
    assert results == list(range(6))
    assert extra_started is False
    assert peak[0] == 2


def _submission():
    return prepare(TaskRun(inc, (1,), {}, frozenset(), None), [])


def test_submit_before_start_and_after_shutdown_raise_runtime_error():
    runner = ThreadPoolTaskRunner(max_workers=1)
    with pytest.raises(RuntimeError):
        runner.submit(_submission())

    with runner:
        future = runner.submit(_submission())
        assert future.result(timeout=10) == 2
    assert not runner.started
    with pytest.raises(RuntimeError):
        runner.submit(_submission())


def test_starting_twice_raises_runtime_error():
    runner = ThreadPoolTaskRunner(max_workers=1)
    runner.start()
    try:
        with pytest.raises(RuntimeError):
            runner.start()
    finally:
        runner.shutdown()


def test_a_runner_can_serve_two_flows_one_after_the_other():
    runner = ThreadPoolTaskRunner(max_workers=2)

    @flow(task_runner=runner)
    def uses_runner(x):
        return inc.submit(x).result()

    assert uses_runner(1) == 2
    assert uses_runner(2) == 3
