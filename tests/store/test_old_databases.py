"""A record written by the previous version keeps working: it opens (and migrates), its
runs read back, new runs (time-ordered ids, settled in one event) go in beside the old
ones (random ``uuid4`` ids, written as three events), and every list pages over both."""

from __future__ import annotations

import sqlite3
import time
import uuid

import fluvial.store as store
from fluvial.runs import time_ordered_id
from fluvial.server import queries as server_queries
from fluvial.store import connection, queries
from fluvial.store.connection import transaction
from fluvial.store.schema import MIGRATIONS, current_version, migrate
from fluvial.store.writer.batch import FLOW_RUN, STATE, TASK_RUN, write_events

OLD_RUNS = 30
NEW_RUNS = 40


def _previous_version_database(backend: str) -> connection.Connection:
    """An empty database at the schema version before this one; SQLite with the 4 KiB
    pages every earlier version created."""
    if backend == "sqlite":
        path = connection.store_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA page_size = 4096")
        conn.execute("PRAGMA journal_mode = WAL")
    else:
        conn = connection.connect()
    migrate(conn, MIGRATIONS[:-1])
    assert current_version(conn) == len(MIGRATIONS) - 1
    return conn


def test_a_previous_versions_record_opens_reads_and_takes_new_runs(backend: str) -> None:
    conn = _previous_version_database(backend)
    flow_run_id = uuid.uuid4()
    t = time.time() - 60
    old_ids = [uuid.uuid4() for _ in range(OLD_RUNS)]
    events: list[tuple] = [(FLOW_RUN, flow_run_id, "old-run", "etl", "{}", (), None, t)]
    for i, run_id in enumerate(old_ids):  # as the previous writer wrote a task run
        events += [(TASK_RUN, run_id, flow_run_id, f"old-{i}", "old-key", (), t + i),
                   (STATE, run_id, "RUNNING", "Running", None, t + i, None),
                   (STATE, run_id, "COMPLETED", "Completed", None, t + i + 0.5, None)]
    with transaction(conn):
        write_events(conn, events, 1, "old-host")
    conn.close()

    recorder = store.get_recorder()  # this version opens it: migrated, then written
    assert recorder is not None
    new_ids = [time_ordered_id() for _ in range(NEW_RUNS)]
    now = time.time()
    for run_id in new_ids:
        recorder.task_run_finished(run_id, flow_run_id, "new", "new-key", ("x",), now,
                                   "COMPLETED", "Completed", None, now + 0.001, True)
    recorder.flush(timeout=60)

    with connection.reading() as conn:
        assert current_version(conn) == len(MIGRATIONS)
        if backend == "sqlite":  # an existing file keeps its page size
            assert conn.execute("PRAGMA page_size").fetchone()[0] == 4096
        pages, cursor = [], None
        while True:
            page = server_queries.task_runs(conn, str(flow_run_id), limit=7, cursor=cursor)
            pages += [item["id"] for item in page.items]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor

    # creation order, then id: the old runs, then the new ones (made in the same instant
    # here, ordered by their ids), each once
    assert pages == [str(i) for i in old_ids] + sorted(str(i) for i in new_ids)
    runs = queries.task_runs(flow_run_id)
    assert [r.id for r in runs] == old_ids + new_ids
    assert [r.name for r in runs[:OLD_RUNS]] == [f"old-{i}" for i in range(OLD_RUNS)]
    assert all(r.name == f"new-{r.id.hex[-8:]}" for r in runs[OLD_RUNS:])
    assert {r.state_type for r in runs} == {"COMPLETED"}
    assert all(r.duration is not None for r in runs)
    streamed = list(queries.iter_task_runs(flow_run_id, page_size=9))
    assert sorted(r.id for r in streamed) == sorted(old_ids + new_ids)
    for run_id in (old_ids[0], new_ids[-1]):
        assert [s.type for s in queries.state_history(run_id)] == ["RUNNING", "COMPLETED"]
    assert queries.resolve_run_id(str(flow_run_id)[:8]) == flow_run_id

