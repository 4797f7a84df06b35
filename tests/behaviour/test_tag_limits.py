"""Tag concurrency limits hold on every runner: admission happens in the driver."""

from __future__ import annotations

from pathlib import Path

import fluvial
from fluvial import flow, task
from fluvial.concurrency import delete_limit, set_limit


def _peak(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals],
                    key=lambda e: (e[0], e[1]))  # ends before starts at the same instant
    peak = current = 0
    for _, delta in events:
        current += delta
        peak = max(peak, current)
    return peak


@task(tags=["limited-db"])
def timed(i: int, path: str) -> int:
    import time

    start = time.time()
    time.sleep(0.05)
    end = time.time()
    with open(path, "a") as fh:
        fh.write(f"{start} {end}\n")
    return i


def test_tag_limit_peak_is_exactly_the_limit(runner, tmp_path: Path):
    log = tmp_path / "intervals"
    set_limit("limited-db", 3)
    try:
        @flow(task_runner=runner)
        def limited():
            return timed.map(range(60), fluvial.unmapped(str(log))).result()

        assert limited() == list(range(60))
    finally:
        delete_limit("limited-db")
    intervals = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    assert len(intervals) == 60
    assert _peak(intervals) == 3


def test_tags_context_manager_applies_limits(runner, tmp_path: Path):
    log = tmp_path / "intervals"

    @task
    def plain(i: int, path: str) -> int:
        return timed.fn(i, path)

    set_limit("ctx-tag", 1)
    try:
        @flow(task_runner=runner)
        def limited():
            with fluvial.tags("ctx-tag"):
                futures = plain.map(range(12), fluvial.unmapped(str(log)))
            return futures.result()

        assert limited() == list(range(12))
    finally:
        delete_limit("ctx-tag")
    intervals = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    assert _peak(intervals) == 1


def test_untagged_and_unlimited_tags_run_freely(runner, tmp_path: Path):
    @task(tags=["no-limit-here"])
    def free(i: int) -> int:
        return i

    @flow(task_runner=runner)
    def unlimited():
        return free.map(range(20)).result()

    assert unlimited() == list(range(20))


@task(tags=["crashy"])
def crash_or_sleep(i: int) -> int:
    import os
    import time

    if i == 0:
        os._exit(3)  # the worker process dies while holding the only slot
    time.sleep(0.01)
    return i


def test_slot_of_a_crashed_run_comes_back(session_runner):
    # on the out-of-process runners a task can kill its worker; threads share our process
    for kind in ("processes", "dask", "ray"):
        set_limit("crashy", 1)
        try:
            @flow(task_runner=session_runner(kind))
            def crashing():
                futures = crash_or_sleep.map(range(6))
                fluvial.wait(futures)
                return [f.state.name for f in futures]

            names = crashing()
        finally:
            delete_limit("crashy")
        assert names[0] == "Crashed", kind
        assert names[1:] == ["Completed"] * 5, kind


SCRIPT = '''
import sys, time
from fluvial import flow, task, unmapped

@task(tags=["shared-tag"])
def hold(i, path):
    start = time.time()
    time.sleep(0.05)
    with open(path, "a") as fh:
        fh.write(f"{start} {time.time()}\\n")
    return i

@flow
def holder(path: str):
    return hold.map(range(15), unmapped(path)).result()

if __name__ == "__main__":
    holder(sys.argv[1])
'''


def test_two_flow_runs_in_two_processes_share_a_limit(tmp_path: Path, fluvial_home: str):
    import os
    import subprocess
    import sys

    script = tmp_path / "holder.py"
    script.write_text(SCRIPT)
    log = tmp_path / "intervals"
    set_limit("shared-tag", 2)
    env = {**os.environ, "FLUVIAL_HOME": fluvial_home}
    procs = [subprocess.Popen([sys.executable, str(script), str(log)], env=env)
             for _ in range(2)]
    assert [p.wait(timeout=120) for p in procs] == [0, 0]
    intervals = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    assert len(intervals) == 30
    assert _peak(intervals) == 2
