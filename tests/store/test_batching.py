"""The writer: exact counts under volume, and one transaction per batch (both backends)."""

from __future__ import annotations

import threading
import time
import uuid

import fluvial.store as store
from fluvial.store import connection
from fluvial.store.recorder import Recorder


def test_100_000_task_runs_are_all_committed(recorder: Recorder) -> None:
    n = 100_000  # about 2 s on SQLite, 4 s on PostgreSQL here
    flow_run_id = uuid.uuid4()
    t = time.time()
    recorder.flow_run_created(flow_run_id, "big", "fanout", {}, (), None, t)
    for _ in range(n):
        task_id = uuid.uuid4()
        recorder.task_run_created(task_id, flow_run_id, "noop", "noop", (), t)
        recorder.state(task_id, "COMPLETED", "Completed", None, t)
    recorder.flush(timeout=60)
    with store.connection.reading() as conn:
        counts = conn.execute(
            "SELECT count(*), count(DISTINCT id), "
            "sum(CASE WHEN state_type = 'COMPLETED' THEN 1 ELSE 0 END) FROM task_runs"
        ).fetchone()
        history = conn.execute("SELECT count(*) FROM state_history").fetchone()[0]
    assert counts == (n, n, n)
    assert history == n
    assert recorder.events_committed == 2 * n + 1
    assert recorder.batches_committed > 1  # the volume was split into batches


def test_a_reader_never_sees_part_of_a_batch(backend: str) -> None:
    # The writer wakes only on flush, so each round is exactly one batch.
    rec = Recorder(interval=3600, wake_at=10**9, max_batch=10**9)
    stop = threading.Event()
    seen: list[tuple[int, int, int]] = []
    violations: list[tuple[int, int, int]] = []

    def read() -> None:
        conn = connection.connect()
        # one snapshot for the three counts
        begin = "BEGIN ISOLATION LEVEL REPEATABLE READ" if backend == "postgresql" else "BEGIN"
        last = False
        while not last:
            last = stop.is_set()  # a read that starts after the last commit ends the loop
            conn.execute(begin)
            runs = conn.execute("SELECT count(*) FROM flow_runs").fetchone()[0]
            done = conn.execute(
                "SELECT count(*) FROM flow_runs WHERE state_type = 'COMPLETED'"
            ).fetchone()[0]
            states = conn.execute("SELECT count(*) FROM state_history").fetchone()[0]
            conn.execute("COMMIT")
            seen.append((runs, done, states))
            if not (runs == done and states == 3 * runs):
                violations.append((runs, done, states))
        conn.close()

    reader = threading.Thread(target=read)
    reader.start()
    try:
        t = time.time()
        for _ in range(20):
            for _ in range(500):
                run = uuid.uuid4()
                rec.flow_run_created(run, "r", "f", {}, (), None, t)
                rec.state(run, "PENDING", "Pending", None, t)
                rec.state(run, "RUNNING", "Running", None, t)
                rec.state(run, "COMPLETED", "Completed", None, t)
            rec.flush(timeout=30)
    finally:
        stop.set()
        reader.join()
        rec.close()
    assert rec.batches_committed == 20
    assert violations == []
    assert seen and seen[-1] == (10_000, 10_000, 30_000)
    assert len({runs for runs, _, _ in seen}) > 2  # the reader did read between batches


def test_concurrent_producers(recorder: Recorder) -> None:
    def produce() -> None:
        for _ in range(5_000):
            recorder.task_run_created(uuid.uuid4(), None, "t", "k", (), time.time())

    threads = [threading.Thread(target=produce) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    recorder.flush(timeout=30)
    with store.connection.reading() as conn:
        assert conn.execute("SELECT count(*) FROM task_runs").fetchone() == (40_000,)


def test_two_processes_write_the_same_store(recorder: Recorder, tmp_path) -> None:
    import subprocess
    import sys

    script = tmp_path / "writer.py"
    script.write_text(
        "import time, uuid\n"
        "import fluvial.store as store\n"
        "rec = store.get_recorder()\n"
        "for _ in range(20_000):\n"
        "    rec.task_run_created(uuid.uuid4(), None, 'other', 'k', (), time.time())\n"
        "rec.close()\n"
    )
    proc = subprocess.Popen([sys.executable, str(script)])
    for _ in range(20_000):
        recorder.task_run_created(uuid.uuid4(), None, "mine", "k", (), time.time())
    recorder.flush(timeout=30)
    assert proc.wait(timeout=60) == 0
    with store.connection.reading() as conn:
        rows = dict(conn.execute("SELECT name, count(*) FROM task_runs GROUP BY name"))
    assert rows == {"mine": 20_000, "other": 20_000}
