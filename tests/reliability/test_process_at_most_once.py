"""The process runner runs each task run at most once per attempt (issue 16, item 3).

Workers really die (``os._exit``, a real segfault) in the middle of big maps; every run
appends its index to a file when it starts, so the file counts executions."""

from __future__ import annotations

import collections
import os
from pathlib import Path

from fluvial import flow, task, unmapped
from fluvial.runners import ProcessPoolTaskRunner


def _segfault() -> None:
    import ctypes

    ctypes.string_at(0)  # SIGSEGV


@task
def noted(i: int, log: str, crash_every: int) -> int:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{i}\n".encode())  # one small O_APPEND write: atomic
    os.close(fd)
    if i % crash_every == crash_every - 1:
        if (i // crash_every) % 2:
            _segfault()
        os._exit(7)
    return i


def _executions(log: Path) -> collections.Counter[int]:
    return collections.Counter(int(line) for line in log.read_text().split())


def test_each_run_executes_once_when_workers_die_in_a_big_map(tmp_path: Path):
    log = tmp_path / "executions"
    n, every = 3000, 150  # 20 crashes, half segfaults, half os._exit

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=3))
    def big() -> list:
        futures = noted.map(range(n), unmapped(str(log)), unmapped(every))
        futures.wait()
        return [f.state for f in futures]

    states = big()
    crashed = {i for i, s in enumerate(states) if s.is_crashed()}
    assert crashed == {i for i in range(n) if i % every == every - 1}
    assert all(s.is_completed() and s.result() == i
               for i, s in enumerate(states) if i not in crashed)
    counts = _executions(log)
    assert set(counts) == set(range(n))
    twice = {i: c for i, c in counts.items() if c != 1}
    assert not twice, f"{len(twice)} runs executed more than once: {sorted(twice.items())[:10]}"
    for i in sorted(crashed)[:4]:
        assert "exited with" in states[i].message
    assert any("SIGSEGV" in states[i].message for i in crashed)
    assert any("exit code 7" in states[i].message for i in crashed)


@task(retries=1)
def crash_once(i: int, log: str, marks: str) -> int:
    fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    os.write(fd, f"{i}\n".encode())
    os.close(fd)
    if i % 50 == 3:
        mark = Path(marks) / str(i)
        if not mark.exists():
            mark.write_text("crashed once")
            os._exit(9)
    return i


def test_a_crash_is_an_attempt_retried_while_retries_are_left(tmp_path: Path):
    log = tmp_path / "executions"
    marks = tmp_path / "marks"
    marks.mkdir()

    @flow(task_runner=ProcessPoolTaskRunner(max_workers=2))
    def retried() -> list[int]:
        return crash_once.map(range(500), unmapped(str(log)), unmapped(str(marks))).result()

    assert retried() == list(range(500))
    counts = _executions(log)
    crashers = {i for i in range(500) if i % 50 == 3}
    assert {i: c for i, c in counts.items() if c != (2 if i in crashers else 1)} == {}
