"""A flow run's rows and states do not wait behind the task-run batch the writer is
committing: it commits that batch a chunk at a time and lets an urgent batch in between
(then the rest of the batch in a transaction of its own), and acknowledges the task-run
batch once all of it is committed."""

from __future__ import annotations

import time
import uuid

import fluvial.store as store
from fluvial.runs import time_ordered_id
from fluvial.store import connection
from fluvial.store.connection import connect
from fluvial.store.recorder import Recorder
from fluvial.store.writer.batch import CHUNK, TASK_RUN_DONE, BatchWriter


def _settled(n: int, flow_run_id: str | None = None) -> list[tuple]:
    ts = time.time()
    return [(TASK_RUN_DONE, time_ordered_id().int, flow_run_id, "noop", "noop-key", (), ts,
             "COMPLETED", "Completed", None, ts, True) for _ in range(n)]


def _count(table: str = "task_runs") -> int:
    with connection.reading() as conn:
        return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def _autocheckpoint(writer: BatchWriter) -> int:
    return int(writer.conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])


def test_a_batch_gives_way_after_a_chunk_and_the_rest_follows(backend: str) -> None:
    store.get_recorder()  # the database, migrated
    target = store.connection.database_target()
    writer = BatchWriter(target, connect(target), 1, "host")
    events = _settled(1_200)
    asked: list[int] = []

    def urgent() -> bool:  # asked between chunks: the first time, something is urgent
        asked.append(_count())
        return len(asked) == 1

    try:
        skipped, error, rest = writer.commit_yielding(events, urgent, chunk=500)
        assert (skipped, error) == (0, None)
        assert asked == [0]  # nothing was visible before the first commit
        assert list(rest) == events[500:] and _count() == 500  # the first chunk, committed
        if backend == "sqlite":  # that commit and the urgent one's leave the checkpoint
            assert _autocheckpoint(writer) == 0  # to the commits after them
        skipped, error, rest = writer.commit_yielding(rest, urgent, chunk=500)
        assert (skipped, error, list(rest)) == (0, None, [])
        assert asked == [0, 500]  # the rest, in one transaction: nothing urgent any more
        assert _count() == 1_200 and _count("state_history") == 2_400
        if backend == "sqlite":
            assert _autocheckpoint(writer) == 1000  # as before
    finally:
        writer.close()


def test_a_flows_state_is_committed_while_a_big_task_run_batch_is(home) -> None:
    n = 100_000
    # the drain thread wakes when the 100 000th run is appended, and sends them as one batch
    rec = Recorder(interval=3600, wake_at=n, max_batch=n)
    try:
        flow_run_id = uuid.uuid4()
        rec.flow_run_created(flow_run_id, "f", "f", {}, (), None, time.time())
        rec.flush(timeout=30)
        ts = time.time()
        for _ in range(n):
            rec.task_run_finished(time_ordered_id(), flow_run_id, "noop", "noop-key", (), ts,
                                  "COMPLETED", "Completed", None, ts, True)
        while rec.pending:  # taken by the drain thread: the urgent batch follows it
            time.sleep(0.001)
        rec.state(flow_run_id, "COMPLETED", "Completed", None, time.time(), urgent=True)
        rec.flush_urgent(timeout=30)
        with connection.reading() as conn:
            state = conn.execute("SELECT state_type FROM flow_runs").fetchone()[0]
        committed = _count()
        assert state == "COMPLETED"
        assert committed < n  # it did not wait for the whole task-run batch
        assert committed % CHUNK == 0  # the batch was cut between whole chunks
        rec.flush(timeout=60)
        assert _count() == n and rec.events_committed == n + 2
    finally:
        rec.close()


def test_a_part_that_fails_goes_the_ordinary_way_and_the_parts_before_stay(home) -> None:
    store.get_recorder()  # the database, migrated
    target = store.connection.database_target()
    conn = connect(target)
    # a real failure, from SQLite itself, for one run of the batch's second part
    conn.execute("""CREATE TRIGGER poison BEFORE INSERT ON task_runs WHEN NEW.name = 'poison'
                    BEGIN SELECT RAISE(ABORT, 'poisoned run'); END""")
    writer = BatchWriter(target, conn, 1, "host")
    writer.retry_seconds = 0.2  # then spilled to the journal
    events = _settled(1_500)
    events[1_200] = events[1_200][:3] + ("poison",) + events[1_200][4:11] + (False,)
    try:
        skipped, error, rest = writer.commit_yielding(events, lambda: True, chunk=500)
        assert (skipped, error, _count()) == (0, None, 500)  # gave way after the first part
        skipped, error, rest = writer.commit_yielding(rest, lambda: False, chunk=500)
        # its transaction failed: all of it retried, then kept in the journal, in order
        assert (skipped, error, list(rest)) == (0, None, [])
        assert _count() == 500 and writer.journal.pending == 1
        writer.conn.execute("DROP TRIGGER poison")  # (the writer reconnected meanwhile)
        assert writer._replay(force=True)
        assert _count() == 1_500 and _count("state_history") == 3_000
    finally:
        writer.close()
