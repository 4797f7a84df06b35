"""``ProcessPoolTaskRunner(max_workers, initializer, initargs)``: the initializer runs once
in every worker process the runner starts (issue 9, item 6)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fluvial import flow, task
from fluvial.exceptions import SerializationFailure
from fluvial.runners import ProcessPoolTaskRunner


def record_start(directory: str, label: str) -> None:
    """The initializer: note this process, once, and configure it."""
    with open(Path(directory) / f"{os.getpid()}.init", "a") as fh:
        fh.write(label + "\n")
    os.environ["FLUVIAL_TEST_WORKER_LABEL"] = label  # what a task in this process sees


@task
def where_and_what(i: int) -> tuple[int, str | None]:
    import time

    time.sleep(0.01)
    return os.getpid(), os.environ.get("FLUVIAL_TEST_WORKER_LABEL")


def test_initializer_runs_once_in_every_worker_process(tmp_path):
    runner = ProcessPoolTaskRunner(max_workers=2, initializer=record_start,
                                   initargs=(str(tmp_path), "ready"))

    @flow(task_runner=runner)
    def many() -> list[tuple[int, str | None]]:
        return where_and_what.map(range(40)).result()

    results = many()
    pids = {pid for pid, _ in results}
    assert {label for _, label in results} == {"ready"}  # every run saw its worker set up
    inits = {int(p.stem): p.read_text().splitlines() for p in tmp_path.glob("*.init")}
    assert pids <= set(inits)
    assert all(lines == ["ready"] for lines in inits.values())  # once per process
    assert 1 <= len(inits) <= 2


def test_duplicate_keeps_the_initializer(tmp_path):
    runner = ProcessPoolTaskRunner(3, initializer=record_start, initargs=(str(tmp_path), "x"))
    twin = runner.duplicate()
    assert (twin.max_workers, twin.initializer, twin.initargs) == (3, record_start,
                                                                     (str(tmp_path), "x"))


def test_an_initializer_defined_in_a_function_travels_by_value(tmp_path):
    marker = tmp_path / "closure"

    def local_init() -> None:  # not importable by the workers: shipped with cloudpickle
        marker.write_text("ran")

    @flow(task_runner=ProcessPoolTaskRunner(1, initializer=local_init))
    def one() -> tuple[int, str | None]:
        return where_and_what.submit(0).result()

    one()
    assert marker.read_text() == "ran"


def broken_init() -> None:
    raise RuntimeError("no database")


def test_a_failing_initializer_crashes_the_runs_with_its_name():
    @flow(task_runner=ProcessPoolTaskRunner(1, initializer=broken_init))
    def doomed() -> None:
        state = where_and_what.submit(1, return_state=True)
        assert state.type.value == "CRASHED"
        assert "broken_init" in state.message and "no database" in state.message

    doomed()


def test_bad_initializer_arguments_fail_fast():
    with pytest.raises(TypeError, match="initializer must be callable"):
        ProcessPoolTaskRunner(initializer=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="initargs must be a tuple"):
        ProcessPoolTaskRunner(initializer=print, initargs=[1])  # type: ignore[arg-type]
    import threading

    lock = threading.Lock()
    with pytest.raises(SerializationFailure, match="initializer"):
        ProcessPoolTaskRunner(initializer=print, initargs=(lock,))
