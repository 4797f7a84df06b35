"""Which runs of a batch exist already (``rows.stale``): their latest state must be
refreshed from their whole history. A big batch of time-ordered ids is answered by one
range query; random ids, or another driver's runs in that range, by a probe per id. Every
way must give the same answer, on both databases."""

from __future__ import annotations

import uuid

import pytest

from fluvial.runs import time_ordered_id
from fluvial.store import connection, rows
from fluvial.store.connection import transaction
from fluvial.store.writer.batch import STATE, TASK_RUN, write_events


def _ids(n: int, ordered: bool) -> list[str]:
    return [str(time_ordered_id() if ordered else uuid.uuid4()) for _ in range(n)]


@pytest.mark.parametrize("ordered", [True, False], ids=["time-ordered", "random"])
@pytest.mark.parametrize("probe_rows", [1, 256, 10**6])
def test_stale_finds_exactly_the_runs_with_a_row_or_a_state(
        backend: str, ordered: bool, probe_rows: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows, "RANGE_PROBE_ROWS", probe_rows)
    before = _ids(300, ordered)  # recorded earlier: some inside the batch's range
    made = _ids(500, ordered)
    batch = [run for i, run in enumerate(made) if i % 5 in (0, 2)]
    between = [run for i, run in enumerate(made) if i % 5 not in (0, 2)]  # another driver's
    with_row, with_state = batch[5:8], [batch[0], batch[-1], batch[100]]
    with connection.reading() as conn:
        with transaction(conn):
            write_events(conn, [(TASK_RUN, run, None, "t", "k", (), 1.0)
                                for run in before + between + with_row], 1, "host")
            write_events(conn, [(STATE, run, "PENDING", "Pending", None, 1.0, None)
                                for run in with_state], 1, "host")
        with transaction(conn):
            found = rows.stale(conn, "task_runs", batch)
            assert rows.stale(conn, "task_runs", batch[:3]) == {batch[0]}  # a few: probed
    assert found == set(with_row) | set(with_state)


def test_a_batch_beyond_every_recorded_run_is_not_stale(backend: str) -> None:
    with connection.reading() as conn:
        with transaction(conn):
            write_events(conn, [(TASK_RUN, run, None, "t", "k", (), 1.0)
                                for run in _ids(500, True)], 1, "host")
            assert rows.stale(conn, "task_runs", _ids(500, True)) == set()
