"""Task runs read by keyset pages: every row once, failures first (issue 16, item 14).

On SQLite and PostgreSQL: task runs created at the very same instant (ties broken by
row order), pages smaller than the run, limits across the failure/other boundary.
"""

from __future__ import annotations

import time
import uuid

from fluvial.store import queries


def _seed(recorder, n: int, failed: set[int]) -> uuid.UUID:
    t = time.time()
    run = uuid.uuid4()
    recorder.flow_run_created(run, "paged", "etl", {}, (), None, t)
    for i in range(n):
        task_id = uuid.uuid4()
        ts = t + (i // 4)  # four task runs share each creation time
        recorder.task_run_created(task_id, run, f"t-{i:03d}", "jobs.extract" if i % 3 else
                                  "jobs.load", (), ts)
        if i in failed:
            recorder.state(task_id, "FAILED", "Failed", f"bad {i}", ts + 0.5)
        elif i % 7 == 0:
            recorder.state(task_id, "CRASHED", "Crashed", f"died {i}", ts + 0.5)
        else:
            recorder.state(task_id, "COMPLETED", "Completed", None, ts + 0.5)
    recorder.state(run, "FAILED", "Failed", None, t + n)
    recorder.flush(timeout=30)
    return run


def test_pages_return_every_task_run_once_failures_first(recorder) -> None:
    failed = {5, 17, 40}
    run = _seed(recorder, 61, failed)
    crashed = {i for i in range(61) if i % 7 == 0 and i not in failed}
    names = [t.name for t in queries.iter_task_runs(run, page_size=4)]
    assert sorted(names) == [f"t-{i:03d}" for i in range(61)]
    bad = sorted(failed | crashed)
    assert names[:len(bad)] == [f"t-{i:03d}" for i in bad]
    assert names[len(bad):] == [f"t-{i:03d}" for i in range(61) if i not in bad]
    assert names == [t.name for t in queries.iter_task_runs(run, page_size=1000)]
    plain = [t.name for t in queries.iter_task_runs(run, failures_first=False, page_size=3)]
    assert plain == [f"t-{i:03d}" for i in range(61)]
    for limit in (0, 1, len(bad), len(bad) + 1, 60, 61, 500):
        got = [t.name for t in queries.iter_task_runs(run, limit=limit, page_size=4)]
        assert got == names[:limit]


def test_counts_per_task_and_state(recorder) -> None:
    run = _seed(recorder, 30, {1, 2})
    counts = queries.task_run_counts(run)
    assert sum(c.count for c in counts) == 30
    assert counts[0].state_type in ("FAILED", "CRASHED")
    as_dict = {(c.task_key, c.state_type): c.count for c in counts}
    assert as_dict[("jobs.extract", "FAILED")] == 2
    assert as_dict[("jobs.load", "CRASHED")] == 2  # 0 and 21: multiples of 3 and of 7
