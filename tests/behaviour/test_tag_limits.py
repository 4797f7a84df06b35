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


def _call_from_threads(n: int, call) -> None:  # type: ignore[no-untyped-def]
    import contextvars
    import threading

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(call,))
               for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)


def test_called_tasks_take_their_tag_slots_in_a_flow(runner, tmp_path: Path):
    # four callers inside one flow run (threads sharing the flow's context) run one at a time
    log = tmp_path / "intervals"
    set_limit("limited-db", 1)
    try:
        @flow(task_runner=runner)
        def calling():
            _call_from_threads(4, lambda: timed(0, str(log)))

        calling()
    finally:
        delete_limit("limited-db")
    intervals = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    assert len(intervals) == 4
    assert _peak(intervals) == 1


def test_called_tasks_take_their_tag_slots_outside_a_flow(tmp_path: Path):
    log = tmp_path / "intervals"
    set_limit("limited-db", 1)
    try:
        _call_from_threads(4, lambda: timed(0, str(log)))
    finally:
        delete_limit("limited-db")
    intervals = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    assert len(intervals) == 4
    assert _peak(intervals) == 1


def test_a_called_task_waits_while_its_tag_is_blocked(tmp_path: Path):
    # a limit of 0 blocks the tag: the call does not run until the limit is raised
    import threading

    log = tmp_path / "intervals"
    set_limit("limited-db", 0)
    try:
        done = threading.Event()

        @flow
        def calling():
            timed(0, str(log))
            done.set()

        t = threading.Thread(target=calling)
        t.start()
        assert not done.wait(1.0)
        assert not log.exists()
        set_limit("limited-db", 1)
        assert done.wait(30)
        t.join(30)
    finally:
        delete_limit("limited-db")
    assert len(log.read_text().splitlines()) == 1


LONG_TAGS = ["x" * 300, "長い" * 150]  # ~300 bytes of ASCII; 900 bytes of UTF-8


def test_long_tags_limit_a_map_and_list_in_the_cli(tmp_path: Path, fluvial_home: str):
    from click.testing import CliRunner

    from fluvial.cli.concurrency import concurrency_limit

    for tag in LONG_TAGS:
        log = tmp_path / f"intervals-{len(tag)}"

        @task(tags=[tag])
        def held(i: int, path: str) -> int:
            return timed.fn(i, path)

        set_limit(tag, 2)
        try:
            @flow
            def limited(log: str = str(log)):
                return held.map(range(10), fluvial.unmapped(log)).result()

            assert limited() == list(range(10))
            intervals = [tuple(map(float, ln.split())) for ln in log.read_text().splitlines()]
            assert _peak(intervals) == 2
            ls = CliRunner().invoke(concurrency_limit, ["ls"])
            assert ls.exit_code == 0, ls.output
            assert tag[:20] in ls.output
            inspect = CliRunner().invoke(concurrency_limit, ["inspect", tag])
            assert inspect.exit_code == 0, inspect.output
        finally:
            delete_limit(tag)
    names = sorted(p.read_text(encoding="utf-8") for p in Path(fluvial_home, "slots").glob("*/name"))
    assert names == sorted(LONG_TAGS)  # the tag kept inside, for display
    assert {len(p.name) for p in Path(fluvial_home, "slots").iterdir()} == {34}


def test_a_dispatch_error_fails_the_runs_instead_of_hanging(make_runner, fluvial_home: str):
    # the single-host slot manager cannot create its files: each tagged run ends Crashed
    # with the cause, the untagged one completes, and the flow ends (no wait forever)
    import threading

    Path(fluvial_home, "slots").write_text("not a directory")

    @task(tags=["broken-slots"])
    def tagged(i: int) -> int:
        return i

    @task
    def plain(i: int) -> int:
        return i

    seen: list = []
    for kind in ("threads", "processes"):
        set_limit("broken-slots", 2)
        seen.clear()
        try:
            @flow(task_runner=make_runner(kind))  # fresh: its slot manager is this home's
            def dispatching():
                first = plain.submit(0)
                futures = [tagged.submit(9)] + list(tagged.map(range(4), wait_for=[first]))
                fluvial.wait(futures)
                seen.extend([first.state] + [f.state for f in futures])

            box: list = []
            t = threading.Thread(target=lambda box=box: box.append(dispatching(return_state=True)))
            t.start()
            t.join(60)
            assert not t.is_alive(), f"{kind}: the flow hangs"
        finally:
            delete_limit("broken-slots")
        assert box and box[0].is_final(), kind
        assert seen[0].is_completed(), kind
        assert [s.name for s in seen[1:]] == ["Crashed"] * 5, kind
        assert all("could not be dispatched" in s.message and "slots" in s.message
                   for s in seen[1:]), [s.message for s in seen[1:]]
