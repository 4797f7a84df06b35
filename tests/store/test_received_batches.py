"""Batches from remote recorders are applied once, and task-run edges recorded, on SQLite
and on PostgreSQL (the server's side of ``FLUVIAL_API_URL``)."""

from __future__ import annotations

import os
import time
import uuid

import pytest

from fluvial.store.connection import open_database
from fluvial.store.writer import received
from fluvial.store.writer.batch import EDGES, LOG, TASK_RUN_DONE
from fluvial.store.writer.wire import encode


def _batch(client: str, seq: int, events: list[tuple]) -> received.Received:
    return received.parse(encode([received.header(client, seq, os.getpid(), "here"),
                                  *events])[4:])


def test_a_resent_batch_is_applied_once_and_edges_are_kept_once(backend: str) -> None:
    flow_run, up, down = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    now = time.time()
    events = [
        (TASK_RUN_DONE, up, flow_run, "a", "m.a", [], now, "COMPLETED", "Completed", None,
         now + 1, False),
        (TASK_RUN_DONE, down, flow_run, "b", "m.b", [], now + 1, "COMPLETED", "Completed",
         None, now + 2, False),
        (EDGES, flow_run, down, (up,)),
        (LOG, down, 20, "hello", now + 1.5),
    ]
    conn = open_database()
    try:
        assert received.apply(conn, _batch("c1", 1, events)) == (True, 0)
        assert received.apply(conn, _batch("c1", 1, events)) == (False, 0)  # resent
        # another client's batch with the same edge: kept once
        assert received.apply(conn, _batch("c2", 1, [(EDGES, flow_run, down, (up,))])) == (
            True, 0)
        assert conn.execute("SELECT count(*) FROM logs").fetchone()[0] == 1
        assert conn.execute("SELECT count(*) FROM task_runs").fetchone()[0] == 2
        assert conn.execute("SELECT flow_run_id, upstream_id, downstream_id FROM "
                            "task_run_edges").fetchall() == [(str(flow_run), str(up),
                                                              str(down))]
        assert received.prune(conn, now=time.time() + received.KEEP_SECONDS + 1) == 2
        assert conn.execute("SELECT count(*) FROM received_batches").fetchone()[0] == 0
    finally:
        conn.close()


@pytest.mark.parametrize("body, error", [
    (b"", "not a fluvial batch"),
    (encode({"not": "a list"})[4:], "non-empty list"),
    (encode([("fluvial.batch/1", "", 1, 1, "h")])[4:], "client"),
    (encode([("fluvial.batch/1", "c", -1, 1, "h")])[4:], "seq"),
    (encode([("fluvial.batch/1", "c", 1, 1, "h"), "not a tuple"])[4:], "tuple"),
])
def test_a_malformed_batch_is_refused_naming_what_is_wrong(body: bytes, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        received.parse(body)
