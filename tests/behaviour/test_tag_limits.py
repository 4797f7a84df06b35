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
