"""Crash recovery: a driver killed mid-run leaves a clean store and a CRASHED run (both backends)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid

import psutil
import pytest

import fluvial.store as store
from fluvial.store import connection, queries
from fluvial.store.recovery import recover_crashed_runs

WRITER = """
import time, uuid
import fluvial.store as store
rec = store.get_recorder()
flow_run_id = uuid.uuid4()
rec.flow_run_created(flow_run_id, "doomed", "stream", {"n": 10**9}, ["crash"], None, time.time())
rec.state(flow_run_id, "RUNNING", "Running", None, time.time())
rec.flush()
print(flow_run_id, rec.writer_pid, flush=True)
i = 0
while True:
    task_id = uuid.uuid4()
    now = time.time()
    rec.task_run_created(task_id, flow_run_id, f"t-{i}", "t", ["crash"], now)
    rec.state(task_id, "RUNNING", "Running", None, now)
    rec.log(task_id, 20, "working", now)
    rec.state(task_id, "COMPLETED", "Completed", None, now)
    i += 1
    if i % 500 == 0:
        time.sleep(0.001)
"""


def _rows_disagreeing_with_history(conn: connection.Connection, table: str) -> list:
    """Rows whose latest-state columns are not those derived from their state history."""
    return conn.execute(
        f"""SELECT r.id FROM {table} AS r
            LEFT JOIN (
                SELECT run_id, type, ts, row_number() OVER (
                    PARTITION BY run_id ORDER BY ts DESC, seq DESC) AS n
                FROM state_history) AS h ON h.run_id = r.id AND h.n = 1
            WHERE r.state_type IS DISTINCT FROM h.type OR r.state_ts IS DISTINCT FROM h.ts
               OR r.start_time IS DISTINCT FROM (SELECT min(ts) FROM state_history
                                       WHERE run_id = r.id AND type = 'RUNNING')"""
    ).fetchall()


def test_driver_killed_mid_run(backend, tmp_path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(WRITER)
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        first, writer_pid = proc.stdout.readline().split()
        flow_run_id = uuid.UUID(first)
        writer = psutil.Process(int(writer_pid))
        reader = connection.connect()
        deadline = time.time() + 30
        while reader.execute("SELECT count(*) FROM task_runs").fetchone()[0] < 20_000:
            assert time.time() < deadline, "the driver wrote too slowly"
            time.sleep(0.05)
        reader.close()
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        proc.stdout.close()
    # the writer process commits what it received whole, then exits on its own
    assert _exits(writer, timeout=30), "the writer process outlived its driver"

    # reading never recovers (never writes): the run still looks alive
    assert queries.get_flow_run(flow_run_id).state_type == "RUNNING"
    assert store.recover() == [str(flow_run_id)]
    with connection.reading() as conn:
        if backend == "sqlite":
            assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        tasks, open_tasks = conn.execute(
            "SELECT count(*), sum(CASE WHEN coalesce(state_type, '') NOT IN "
            "('COMPLETED', 'CRASHED') THEN 1 ELSE 0 END) FROM task_runs"
        ).fetchone()
        assert tasks >= 20_000 and open_tasks == 0
        assert _rows_disagreeing_with_history(conn, "task_runs") == []
        assert _rows_disagreeing_with_history(conn, "flow_runs") == []
        # every committed row is whole: no task run without its name, key and creation time
        assert conn.execute(
            "SELECT count(*) FROM task_runs WHERE name IS NULL OR task_key IS NULL "
            "OR created IS NULL OR flow_run_id IS DISTINCT FROM ?",
            (str(flow_run_id),),
        ).fetchone() == (0,)
    run = queries.get_flow_run(flow_run_id)
    assert (run.state_type, run.state_name) == ("CRASHED", "Crashed")
    assert run.state_message == f"driver process {proc.pid} died"
    assert run.end_time is not None
    crashed_tasks = [t for t in queries.task_runs(flow_run_id) if t.state_type == "CRASHED"]
    assert all(t.state_message == f"driver process {proc.pid} died" for t in crashed_tasks)
    # recovery happens once per process, and once per run: again, it adds no state
    assert store.recover() == []
    assert _recover() == []
    assert len(queries.state_history(flow_run_id)) == 2


def _exits(process: psutil.Process, timeout: float) -> bool:
    """Whether ``process`` ends (or is a zombie: its parent died too) within ``timeout``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _recover() -> list[str]:
    """Crash recovery now (``store.recover()`` runs once per process)."""
    with connection.reading() as conn:
        return recover_crashed_runs(conn)


def _insert_flow_run(state: str | None, pid: int, hostname: str | None = None) -> str:
    run_id = str(uuid.uuid4())
    with connection.reading() as conn:
        conn.execute(
            "INSERT INTO flow_runs (id, name, flow_name, created, pid, hostname, state_type) "
            "VALUES (?, 'r', 'f', ?, ?, ?, ?)",
            (run_id, time.time(), pid, hostname or socket.gethostname(), state),
        )
    return run_id


@pytest.mark.parametrize("state", [None, "PENDING", "RUNNING", "SCHEDULED", "PAUSED"])
def test_open_runs_of_a_dead_driver_are_crashed(recorder, state) -> None:
    pid = _dead_pid()
    flow_run_id = _insert_flow_run(state, pid)
    open_task, done_task = uuid.uuid4(), uuid.uuid4()
    recorder.task_run_created(open_task, uuid.UUID(flow_run_id), "open", "k", (), time.time())
    recorder.state(open_task, "RUNNING", "Running", None, time.time())
    recorder.task_run_created(done_task, uuid.UUID(flow_run_id), "done", "k", (), time.time())
    recorder.state(done_task, "COMPLETED", "Completed", None, time.time())
    recorder.flush()
    assert _recover() == [flow_run_id]
    run = queries.get_flow_run(flow_run_id)
    assert (run.state_type, run.state_message) == ("CRASHED", f"driver process {pid} died")
    by_name = {t.name: t for t in queries.task_runs(flow_run_id)}
    assert by_name["open"].state_type == "CRASHED"
    assert by_name["done"].state_type == "COMPLETED"


def test_live_final_and_remote_runs_are_left_alone(backend) -> None:
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live = _insert_flow_run("RUNNING", sleeper.pid)
        mine = _insert_flow_run("RUNNING", os.getpid())
        dead = _dead_pid()
        final = _insert_flow_run("COMPLETED", dead)
        remote = _insert_flow_run("RUNNING", dead, hostname="another-host")
        assert store.recover() == []
        for run_id, state in [
            (live, "RUNNING"),
            (mine, "RUNNING"),
            (final, "COMPLETED"),
            (remote, "RUNNING"),
        ]:
            assert queries.get_flow_run(run_id).state_type == state
    finally:
        sleeper.kill()
        sleeper.wait()
    assert queries.get_flow_run(live).state_type == "RUNNING"  # reads never recover
    assert _recover() == [live]  # once its driver is gone
    assert queries.get_flow_run(live).state_type == "CRASHED"


def test_concurrent_recovery_crashes_a_run_once(backend) -> None:
    """Two processes opening the store at once: the run gets one CRASHED state, not two."""
    from fluvial.store.recovery import recover_crashed_runs

    with connection.reading():
        pass  # migrated
    run_id = _insert_flow_run("RUNNING", _dead_pid())
    conns = [connection.connect() for _ in range(4)]
    barrier = threading.Barrier(len(conns))
    recovered: list[list[str]] = []

    def recover(conn: connection.Connection) -> None:
        barrier.wait()
        recovered.append(recover_crashed_runs(conn))

    threads = [threading.Thread(target=recover, args=(conn,)) for conn in conns]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for conn in conns:
        conn.close()
    assert sorted(recovered, key=len) == [[], [], [], [run_id]]
    assert [s.type for s in queries.state_history(run_id)] == ["CRASHED"]
