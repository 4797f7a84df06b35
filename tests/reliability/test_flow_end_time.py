"""A flow run ends when its submitted task runs have ended (issue 16, item 6)."""

from __future__ import annotations

import time

from fluvial import flow, task
from fluvial.store import get_recorder, queries


@task
def slow() -> int:
    time.sleep(1.0)
    return 1


def test_end_time_waits_for_the_submitted_task_runs(runner):
    @flow(task_runner=runner)
    def returns_at_once() -> None:
        slow.submit()  # the function returns in milliseconds; its task run takes a second

    called = time.time()
    state = returns_at_once(return_state=True)
    returned = time.time()
    assert state.is_completed()
    assert state.ts >= called + 1.0
    recorder = get_recorder()
    assert recorder is not None
    recorder.flush()
    record = queries.get_flow_run(state.run_id)
    assert record.duration is not None and record.duration >= 1.0
    assert record.end_time is not None and record.end_time <= returned
    (task_run,) = queries.task_runs(state.run_id)
    assert task_run.end_time is not None and record.end_time >= task_run.end_time
