"""A settled task run (one TASK_RUN_DONE event) is written the short way; the record
it leaves must be the one its three events (TASK_RUN, RUNNING, final state) leave,
whatever else touches the run in the same batch or in other batches."""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from typing import Any

import pytest

from fluvial.store import connection
from fluvial.store.connection import transaction
from fluvial.store.writer.batch import (
    STATE,
    TASK_RUN,
    TASK_RUN_DONE,
    BatchWriter,
    prepare,
    write_events,
)

COLUMNS = ("id, flow_run_id, name, task_key, tags, created, state_type, state_name, "
           "state_message, state_ts, start_time, end_time, result_location")


def _expanded(event: tuple) -> list[tuple]:
    """What a TASK_RUN_DONE stands for, as the general events."""
    _, run_id, flow_run_id, name, task_key, tags, start, type_, state, message, end, \
        default = event
    if type(run_id) is int:  # as the recorder sends it
        run_id = str(uuid.UUID(int=run_id))
    if default:
        name = f"{name}-{str(run_id)[-8:]}"
    out: list[tuple] = [(TASK_RUN, run_id, flow_run_id, name, task_key, tags,
                         start if start is not None else end)]
    if start is not None:
        out.append((STATE, run_id, "RUNNING", "Running", None, start, None))
    out.append((STATE, run_id, type_, state, message, end, None))
    return out


def _random_batches(rng: random.Random) -> list[list[tuple]]:
    """A few runs' events, some settled in one event, with other states around them."""
    flow_run_id = str(uuid.uuid4())
    runs = [str(uuid.uuid4()) for _ in range(4)]
    events: list[tuple] = []
    for run in runs:
        start = rng.choice([None, 10.0, 20.0])
        end = rng.choice([10.0, 15.0, 20.0, 30.0])
        type_ = rng.choice(["COMPLETED", "FAILED", "RUNNING", "CANCELLED"])
        sent = uuid.UUID(run).int if rng.random() < 0.5 else run  # the recorder sends ints
        events.append((TASK_RUN_DONE, sent, flow_run_id, "t", "t-key",
                       rng.choice([(), ("a", "b")]), start, type_, type_.title(),
                       rng.choice([None, "why"]), end, rng.random() < 0.5))
        for _ in range(rng.randrange(3)):  # other states of the same run, before or after
            ts = rng.choice([5.0, 10.0, 25.0, 40.0])
            state = (STATE, run, rng.choice(["PENDING", "RUNNING", "CRASHED"]), "S", None, ts,
                     None)
            events.insert(rng.randrange(len(events) + 1), state)
        if rng.random() < 0.2:  # the same run settled twice
            events.append(events[-1])
    cut = sorted(rng.sample(range(len(events) + 1), 2))
    return [events[:cut[0]], events[cut[0]:cut[1]], events[cut[1]:]]


def _record(conn: Any) -> tuple[list[tuple], list[tuple]]:
    runs = conn.execute(f"SELECT {COLUMNS} FROM task_runs ORDER BY id").fetchall()
    states = conn.execute("SELECT run_id, type, name, message, ts, result_location "
                          "FROM state_history").fetchall()
    return [tuple(r) for r in runs], sorted((tuple(s) for s in states), key=repr)


def _write(conn: Any, batches: list[list[tuple]]) -> tuple[list[tuple], list[tuple]]:
    conn.execute("DELETE FROM task_runs")
    conn.execute("DELETE FROM state_history")
    for batch in batches:
        with transaction(conn):
            write_events(conn, batch, 1, "host")
    return _record(conn)


def test_settled_runs_leave_the_record_their_three_events_leave(backend: str) -> None:
    rng = random.Random(15)
    with connection.reading() as conn:
        for case in range(60 if backend == "sqlite" else 15):
            batches = _random_batches(rng)
            short = _write(conn, batches)
            general = _write(conn, [[e for event in batch for e in (
                _expanded(event) if event[0] == TASK_RUN_DONE else [event])]
                for batch in batches])
            assert short == general, (case, batches)
            # cut into chunks of 2 events, each committed alone (as when urgent batches
            # keep arriving while the writer commits): the same record again
            cut = _write_giving_way(conn, batches, chunk=2)
            assert cut == general, (case, batches)


def _write_giving_way(conn: Any, batches: list[list[tuple]],
                      chunk: int) -> tuple[list[tuple], list[tuple]]:
    conn.execute("DELETE FROM task_runs")
    conn.execute("DELETE FROM state_history")
    writer = BatchWriter(connection.database_target(), conn, 1, "host")
    for batch in batches:
        rest: Sequence[tuple] = batch
        while rest:
            skipped, error, rest = writer.commit_yielding(rest, lambda: True, chunk=chunk)
            assert (skipped, error) == (0, None)
    return _record(conn)


def test_a_run_settled_alone_takes_the_short_way_and_one_touched_again_does_not() -> None:
    alone, failed, touched, reversed_clock, twice = (str(uuid.uuid4()) for _ in range(5))
    batch = prepare([
        (TASK_RUN_DONE, alone, None, "t", "k", (), 1.0, "COMPLETED", "Completed", None, 2.0,
         True),
        (TASK_RUN_DONE, failed, None, "t", "k", (), 1.0, "FAILED", "Failed", "boom", 2.0,
         False),
        (TASK_RUN_DONE, touched, None, "t", "k", (), 1.0, "COMPLETED", "Completed", None, 2.0,
         False),
        (STATE, touched, "CANCELLED", "Cancelled", None, 3.0, None),
        # finished "before" it started (clocks): folded, as three events would be
        (TASK_RUN_DONE, reversed_clock, None, "t", "k", (), 5.0, "COMPLETED", "Completed",
         None, 4.0, False),
        (TASK_RUN_DONE, twice, None, "t", "k", (), 1.0, "COMPLETED", "Completed", None, 2.0,
         False),
        (TASK_RUN_DONE, twice, None, "t", "k", (), 1.0, "FAILED", "Failed", None, 2.5,
         False),
    ], 1, "host")
    # ran and completed plainly: the shortest way (its state columns constant in the SQL)
    assert batch.completed == {alone: (alone, None, f"t-{alone[-8:]}", "k", "[]", 1.0, 2.0)}
    assert list(batch.settled) == [failed]
    # a touched run's first states are still written first, as a settled run's
    assert batch.running == [(failed, 1.0), (touched, 1.0), (twice, 1.0)]
    assert [f[0] for f in batch.finals] == [failed, touched, twice]
    assert set(batch.tasks) == {touched, reversed_clock, twice}
    assert batch.latest[touched][0] == "CANCELLED"
    assert batch.latest[reversed_clock][0] == "RUNNING"  # the later timestamp wins
    assert batch.latest[twice][0] == "FAILED"


@pytest.mark.parametrize("bad", [
    (TASK_RUN_DONE, "x"),  # too short
    (TASK_RUN_DONE, str(uuid.uuid4()), None, "t", "k", (), "soon", "COMPLETED", "C", None, 1.0),
    (TASK_RUN_DONE, str(uuid.uuid4()), None, "t", "k", (), 1.0, "COMPLETED", "Completed", None,
     "later", False),
])
def test_a_malformed_settled_run_is_skipped_and_counted(bad: tuple) -> None:
    good = (TASK_RUN_DONE, str(uuid.uuid4()), None, "t", "k", (), 1.0, "COMPLETED",
            "Completed", None, 2.0, False)
    batch = prepare([bad, good], 1, "host")
    assert batch.skipped == 1
    assert list(batch.completed) == [good[1]]
