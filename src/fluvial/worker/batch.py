"""Running a batch of independent task runs of one task as one backend task (Dask, Ray).

The cluster runners send the small runs of a map in groups (sized by
``fluvial.runners.batching``) so that a backend task carries a few milliseconds of
work instead of one no-op. Inside the batch every run is still its own run: it goes
through ``run_in_worker`` (its own retries, timeouts, caching, hooks, start and end
times), and ends in its own final state, which comes back picklable. A run that fails
does not stop the batch; the runs after it still run.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from fluvial.runs import TaskRun
from fluvial.states import State
from fluvial.worker.entry import run_in_worker

__all__ = ["Runs", "run_batch"]


class Runs:
    """The detached runs of a batch as one opaque argument: a backend that looks for
    its own futures inside list arguments (Dask does) has nothing to walk through."""

    __slots__ = ("runs",)

    def __init__(self, runs: Sequence[tuple]) -> None:
        self.runs = runs

    def __reduce__(self) -> tuple[Any, ...]:
        return (Runs, (self.runs,))


def run_batch(task: Any, detached_runs: Sequence[tuple] | Runs) -> tuple[list[State], float]:
    """Run each of ``detached_runs`` (``TaskRun.detached()`` tuples of ``task``) in order;
    return their final states and the seconds the batch took where it ran."""
    if isinstance(detached_runs, Runs):
        detached_runs = detached_runs.runs
    start = time.perf_counter()
    states = [run_in_worker(TaskRun.attached(task, detached), (), 0, picklable=True)
              for detached in detached_runs]
    return states, time.perf_counter() - start
