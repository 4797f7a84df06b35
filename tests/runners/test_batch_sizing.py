"""Batch sizes from measured durations (shared by the processes, Dask and Ray runners)."""

from __future__ import annotations

from fluvial.runners.batching import BatchSizer


def test_a_task_not_measured_yet_goes_one_run_at_a_time():
    sizer = BatchSizer(target_seconds=0.01, max_batch=1024)
    assert sizer.measured("t") is None and not sizer.slow("t")
    assert sizer.size("t", ready=10_000, slots=4) == 1


def test_fast_runs_fill_the_target_up_to_the_maximum():
    sizer = BatchSizer(target_seconds=0.01, max_batch=1024)
    sizer.observe("t", 0.0001)
    assert sizer.size("t", ready=10_000, slots=4) == 100
    sizer.observe("free", 0.0)
    assert sizer.size("free", ready=10_000, slots=4) == 1024


def test_the_tail_of_a_map_is_spread_over_every_worker():
    sizer = BatchSizer(target_seconds=0.01, max_batch=1024)
    sizer.observe("t", 0.00001)
    assert sizer.size("t", ready=10, slots=4) == 3  # ceil(10 / 4)
    assert sizer.size("t", ready=1, slots=4) == 1


def test_slow_runs_are_never_grouped():
    sizer = BatchSizer(target_seconds=0.01, max_batch=1024)
    sizer.observe("nap", 1.0)
    assert sizer.slow("nap")
    assert sizer.size("nap", ready=100, slots=4) == 1


def test_the_measure_follows_a_moving_average_and_ignores_unknown_durations():
    sizer = BatchSizer(target_seconds=0.01, max_batch=1024)
    sizer.observe("t", 0.001)
    sizer.observe("t", -1.0)  # a run whose duration is unknown
    assert sizer.measured("t") == 0.001
    sizer.observe("t", 0.011)
    assert abs(sizer.measured("t") - 0.003) < 1e-12  # 0.8 * 0.001 + 0.2 * 0.011
