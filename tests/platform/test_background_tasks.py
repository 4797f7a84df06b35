"""Background tasks: ``Task.delay`` queues a run in the record at once; task workers run it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from platform_helpers import env_for_children, wait_until

from fluvial import task
from fluvial.deployments._entrypoint import load_task
from fluvial.deployments._records import connection
from fluvial.task_worker import TaskWorker
from fluvial.workers._reaper import reap

TASKS = '''
import os
import time

from fluvial import task


@task(retries=1)
def square(x: int) -> int:
    marker = os.environ.get("FLUVIAL_TEST_MARKER")
    if marker and x == 3 and not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    return x * x


@task
def broken() -> None:
    raise ValueError("no good")


@task
def slow(seconds: float) -> str:
    time.sleep(seconds)
    return "done"
'''


@pytest.fixture
def tasks_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "tasks_project"
    root.mkdir()
    (root / "bg_tasks.py").write_text(textwrap.dedent(TASKS))
    monkeypatch.chdir(root)
    monkeypatch.setenv("FLUVIAL_TEST_MARKER", str(tmp_path / "attempted"))
    return root


def test_delay_returns_at_once_and_a_task_worker_runs_it(backend, tasks_file) -> None:
    square = load_task("bg_tasks.py:square", tasks_file)
    broken = load_task("bg_tasks.py:broken", tasks_file)
    started = time.perf_counter()
    futures = [square.delay(x) for x in range(5)]
    failing = broken.delay()
    assert time.perf_counter() - started < 5
    assert futures[0].state.is_scheduled() and not futures[0].done()
    with connection() as conn:
        assert conn.execute("SELECT count(*) FROM task_queue WHERE status = 'SCHEDULED'"
                            ).fetchone() == (6,)
    worker = TaskWorker(square, broken, limit=3, run_once=True, poll_interval=0.01)
    worker.start()
    assert [f.result(timeout=10) for f in futures] == [0, 1, 4, 9, 16]  # 3 retried once
    assert failing.state.is_failed()
    with pytest.raises(ValueError, match="no good"):
        failing.result(timeout=10)
    with connection() as conn:
        rows = dict(conn.execute(
            "SELECT id, state_type FROM task_runs").fetchall())
    assert rows[str(futures[3].task_run_id)] == "COMPLETED"
    assert rows[str(failing.task_run_id)] == "FAILED"


def test_delay_checks_arguments_and_needs_the_record(tasks_file, monkeypatch) -> None:
    square = load_task("bg_tasks.py:square", tasks_file)
    with pytest.raises(TypeError, match="task 'square'"):
        square.delay(1, 2)
    with pytest.raises(TypeError, match="cannot be pickled"):
        square.delay(threading.Lock())
    monkeypatch.setenv("FLUVIAL_STORE", "off")
    with pytest.raises(RuntimeError, match="run record"):
        square.delay(1)


def test_a_future_times_out_while_no_worker_runs_it(tasks_file) -> None:
    square = load_task("bg_tasks.py:square", tasks_file)
    future = square.delay(2)
    with pytest.raises(TimeoutError):
        future.result(timeout=0.3)


def test_fluvial_task_serve_runs_queued_runs_in_another_process(backend, tasks_file) -> None:
    square = load_task("bg_tasks.py:square", tasks_file)
    futures = [square.delay(x) for x in (4, 5)]
    worker = subprocess.Popen(
        [sys.executable, "-m", "fluvial.cli", "task", "serve", "bg_tasks.py:square",
         "--limit", "2"], env=env_for_children(), cwd=tasks_file,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert [f.result(timeout=60) for f in futures] == [16, 25]
    finally:
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, out


def test_a_dead_task_workers_runs_go_back_to_the_queue(tasks_file) -> None:
    slow = load_task("bg_tasks.py:slow", tasks_file)
    future = slow.delay(60)
    worker = subprocess.Popen(
        [sys.executable, "-m", "fluvial.cli", "task", "serve", "bg_tasks.py:slow"],
        env=env_for_children(), cwd=tasks_file,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def status() -> str:
        with connection() as conn:
            return conn.execute("SELECT status FROM task_queue").fetchone()[0]

    wait_until(lambda: status() == "RUNNING", what="the task worker to claim the run")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    with connection() as conn:
        heartbeat = conn.execute("SELECT heartbeat FROM workers").fetchone()[0]
        reap(conn, now=heartbeat + 31, heartbeat_timeout=30)
    assert status() == "SCHEDULED"
    assert future.state.is_scheduled()


def test_a_task_defined_here_runs_through_an_in_process_worker() -> None:
    @task
    def add(a: int, b: int) -> int:
        return a + b

    future = add.delay(2, b=3)
    thread = threading.Thread(target=TaskWorker(add, run_once=True, poll_interval=0.01).start)
    thread.start()
    thread.join(60)
    assert future.result(timeout=10) == 5
