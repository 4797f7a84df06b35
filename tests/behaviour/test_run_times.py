"""Every runner reports when a completed run started and ended, and the record keeps it."""

from __future__ import annotations

import time

from fluvial import flow, get_run_context, task
from fluvial.store import get_recorder, queries


@task
def naps(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


def _assert_two_runs_timed(a_flow) -> None:
    """Run ``a_flow`` (two task runs napping 0.2 s each); both are recorded Completed
    with start and end times inside the call, the nap measured where it ran."""
    before = time.time()
    flow_run_id = a_flow()
    after = time.time()
    get_recorder().flush()
    runs = queries.task_runs(flow_run_id)
    assert len(runs) == 2
    for run in runs:
        assert run.state_type == "COMPLETED"
        assert run.start_time is not None and run.end_time is not None, run
        assert before <= run.start_time and run.end_time <= after
        assert run.end_time - run.start_time >= 0.19


def test_a_completed_run_has_its_start_and_end_times_recorded(runner):
    @flow(task_runner=runner)
    def napping():
        naps.map([0.2, 0.2]).result()
        return get_run_context().flow_run.id

    _assert_two_runs_timed(napping)


def test_runs_sent_alone_and_their_dependents_have_start_and_end_times(runner):
    """A lone ``.submit`` and a run with an upstream future (on Dask and Ray: sent one
    by one, their states left in the cluster) are recorded with their times too."""
    @flow(task_runner=runner)
    def chained():
        first = naps.submit(0.2)
        naps.submit(first).result()  # naps for the 0.2 s the first one returns
        return get_run_context().flow_run.id

    _assert_two_runs_timed(chained)
