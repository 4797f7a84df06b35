"""Workers: atomic claims, one process per flow run, crashes, SIGTERM, heartbeats.

Real worker processes (``python -m fluvial.cli worker start``) and real flow
processes; the record is SQLite or the suite's PostgreSQL server. Heartbeat
lapses are decided with an injected clock, never by waiting for them.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from platform_helpers import env_for_children, wait_until

from fluvial.deployments import read_flow_run, run_deployment
from fluvial.deployments._project import deploy_entrypoint
from fluvial.deployments._records import connection
from fluvial.store.recovery import pid_alive
from fluvial.workers import Worker
from fluvial.workers._claim import cancel_collisions, claim_next
from fluvial.workers._reaper import reap

_started: list[subprocess.Popen] = []


@pytest.fixture(autouse=True)
def _no_leftover_workers() -> Any:
    """A test that fails half-way leaves no worker behind (its flow processes die with it)."""
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
            proc.communicate(timeout=30)


def start_worker(*args: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "fluvial.cli", "worker", "start", "--poll-interval", "0.1", *args],
        env=env_for_children(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    _started.append(proc)
    return proc


def state_of(run_id: Any) -> str | None:
    return read_flow_run(run_id).state_type


def markers(project: Path) -> list[str]:
    path = project.parent / "marker.txt"
    return path.read_text().splitlines() if path.exists() else []


def test_a_worker_runs_a_due_run_in_its_own_process(backend, project: Path) -> None:
    dep = deploy_entrypoint("flows.py:add", "nightly", source=project, parameters={"a": 2})
    run = run_deployment("add/nightly", parameters={"b": 3}, timeout=0)
    worker = start_worker("--run-once")
    out, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, out
    done = read_flow_run(run.id)
    assert done.state_type == "COMPLETED", (done, out)
    assert done.worker_id is not None and done.attempt == 1
    assert done.code_version.startswith("sha256:")
    with connection() as conn:
        pid, infra = conn.execute("SELECT pid, infrastructure_pid FROM flow_runs WHERE id = ?",
                                  (str(run.id),)).fetchone()
        history = [r[0] for r in conn.execute(
            "SELECT type FROM state_history WHERE run_id = ? ORDER BY ts, seq", (str(run.id),))]
        assert conn.execute("SELECT count(*) FROM workers").fetchone() == (0,)  # unregistered
    assert pid == infra and pid not in (os.getpid(), worker.pid)
    assert history == ["SCHEDULED", "PENDING", "RUNNING", "COMPLETED"]
    # inside the run: its id, the deployment, the scheduled time (fluvial.runtime)
    [line] = markers(project)
    run_id, dep_name, dep_id, scheduled, total = line.split()
    assert (run_id, dep_name, dep_id, total) == (str(run.id), "nightly", dep.id, "5")
    assert float(scheduled) == pytest.approx(run.scheduled_start_time, abs=1e-3)


def test_a_run_is_claimed_only_once_it_is_due(backend, project: Path) -> None:
    dep = deploy_entrypoint("flows.py:add", "later", source=project, parameters={"a": 1})
    import datetime as dt

    due = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    run = run_deployment("add/later", scheduled_time=due, timeout=0)
    with connection() as conn:
        assert claim_next(conn, "w1", now=due.timestamp() - 1, pool="default") is None
        assert claim_next(conn, "w1", now=due.timestamp(), pool="other") is None
        assert claim_next(conn, "w1", now=due.timestamp(), pool="default") == str(run.id)
        assert claim_next(conn, "w2", now=due.timestamp() + 10, pool="default") is None
    assert state_of(run.id) == "PENDING"
    assert read_flow_run(run.id).worker_id == "w1"
    assert dep.work_pool == "default"


_CLAIMER = """
import json, sys, time
from fluvial.deployments._records import connection
from fluvial.workers._claim import claim_next
name = sys.argv[1]
got = []
with connection() as conn:
    while True:
        run_id = claim_next(conn, name, now=time.time() + 60, pool="default")
        if run_id is None:
            break
        got.append(run_id)
print(json.dumps(got))
"""


def test_competing_claimers_take_each_run_exactly_once(backend, project: Path) -> None:
    deploy_entrypoint("flows.py:add", "many", source=project, parameters={"a": 1})
    runs = {str(run_deployment("add/many", timeout=0).id) for _ in range(60)}
    claimers = [subprocess.Popen([sys.executable, "-c", _CLAIMER, f"w{i}"],
                                 env=env_for_children(), stdout=subprocess.PIPE, text=True)
                for i in range(4)]
    claimed: list[str] = []
    for proc in claimers:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        claimed += json.loads(out)
    assert sorted(claimed) == sorted(runs)  # every run once: no duplicates, none missed
    with connection() as conn:
        owners = conn.execute("SELECT count(DISTINCT worker_id) FROM flow_runs").fetchone()[0]
        states = conn.execute("SELECT DISTINCT state_type FROM flow_runs").fetchall()
    assert owners >= 1 and states == [("PENDING",)]


def test_a_deployment_limit_queues_or_cancels_new_runs(backend, project: Path) -> None:
    deploy_entrypoint("flows.py:add", "queue", source=project, parameters={"a": 1},
                      concurrency_limit=1)
    deploy_entrypoint("flows.py:add", "drop", source=project, parameters={"a": 1},
                      concurrency_limit=1, collision_strategy="CANCEL_NEW")
    queued = [run_deployment("add/queue", timeout=0).id for _ in range(3)]
    dropped = [run_deployment("add/drop", timeout=0).id for _ in range(3)]
    now = time.time() + 1
    with connection() as conn:
        first = claim_next(conn, "w", now)
        second = claim_next(conn, "w", now)
        assert claim_next(conn, "w", now) is None  # both deployments are at their limit
        assert {first, second} == {str(queued[0]), str(dropped[0])}
        cancelled = cancel_collisions(conn, now)
    assert sorted(cancelled) == sorted(str(r) for r in dropped[1:])
    assert [state_of(r) for r in queued] == ["PENDING", "SCHEDULED", "SCHEDULED"]
    assert [state_of(r) for r in dropped] == ["PENDING", "CANCELLED", "CANCELLED"]
    assert "CANCEL_NEW" in read_flow_run(dropped[1]).state_message


def test_a_flow_process_that_dies_does_not_take_the_worker(project: Path) -> None:
    deploy_entrypoint("flows.py:dies", "d", source=project)
    deploy_entrypoint("flows.py:fails", "f", source=project)
    deploy_entrypoint("flows.py:add", "a", source=project, parameters={"a": 1})
    died = run_deployment("dies/d", timeout=0)
    failed = run_deployment("fails/f", timeout=0)
    fine = run_deployment("add/a", timeout=0)
    worker = start_worker("--run-once")
    out, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, out
    crashed = read_flow_run(died.id)
    assert crashed.state_type == "CRASHED"
    assert "-9" in crashed.state_message or "died" in crashed.state_message
    assert read_flow_run(failed.id).state_type == "FAILED"
    assert "bad row 7" in read_flow_run(failed.id).state_message
    assert state_of(fine.id) == "COMPLETED"


def test_a_crashed_run_is_retried_where_the_deployment_allows(project: Path) -> None:
    deploy_entrypoint("flows.py:dies", "twice", source=project, retries=1)
    run = run_deployment("dies/twice", timeout=0)
    Worker(run_once=True, poll_interval=0.05).start()
    again = read_flow_run(run.id)
    assert (again.state_type, again.state_name, again.attempt) == ("SCHEDULED", "AwaitingRetry", 1)
    assert again.worker_id is None
    Worker(run_once=True, poll_interval=0.05).start()
    final = read_flow_run(run.id)
    assert (final.state_type, final.attempt) == ("CRASHED", 2)


def _running_sleepy(project: Path, *worker_args: str, seconds: float = 60.0,
                    retries: int = 0) -> tuple[subprocess.Popen, Any, int]:
    deploy_entrypoint("flows.py:sleepy", "nap", source=project, parameters={"seconds": seconds},
                      retries=retries)
    run = run_deployment("sleepy/nap", timeout=0)
    worker = start_worker(*worker_args)
    wait_until(lambda: state_of(run.id) == "RUNNING", what="the run to start")
    line = wait_until(lambda: [m for m in markers(project) if m.startswith("started")])
    return worker, run, int(line[0].split()[1])


def test_a_sigkilled_workers_runs_crash_once_its_heartbeat_lapses(backend, project) -> None:
    worker, run, flow_pid = _running_sleepy(project, "--heartbeat-timeout", "30")
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    wait_until(lambda: not pid_alive(flow_pid), 30, "the flow process to die with its worker")
    with connection() as conn:
        heartbeat = conn.execute("SELECT heartbeat FROM workers").fetchone()[0]
        assert reap(conn, now=heartbeat + 29, heartbeat_timeout=30)["crashed"] == []
        assert conn.execute("SELECT count(*) FROM workers").fetchone() == (1,)
        reap(conn, now=heartbeat + 31, heartbeat_timeout=30)
        assert conn.execute("SELECT count(*) FROM workers").fetchone() == (0,)
        assert reap(conn, now=heartbeat + 32, heartbeat_timeout=30)["crashed"] == []
    crashed = read_flow_run(run.id)
    assert crashed.state_type == "CRASHED"


def test_a_sigkilled_workers_run_is_rescheduled_when_retries_allow(project) -> None:
    worker, run, flow_pid = _running_sleepy(project, retries=2)
    os.kill(worker.pid, signal.SIGKILL)
    worker.wait(timeout=30)
    wait_until(lambda: not pid_alive(flow_pid), 30, "the flow process to die with its worker")
    with connection() as conn:
        heartbeat = conn.execute("SELECT heartbeat FROM workers").fetchone()[0]
        reap(conn, now=heartbeat + 31, heartbeat_timeout=30)
    again = read_flow_run(run.id)
    assert (again.state_type, again.state_name, again.worker_id) == (
        "SCHEDULED", "AwaitingRetry", None)


def test_sigterm_lets_the_running_flow_finish(project: Path) -> None:
    worker, run, _ = _running_sleepy(project, seconds=1.5)
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, out
    assert state_of(run.id) == "COMPLETED"
    with connection() as conn:
        assert conn.execute("SELECT count(*) FROM workers").fetchone() == (0,)


def test_a_second_sigterm_hands_the_runs_back(project: Path) -> None:
    worker, run, flow_pid = _running_sleepy(project, seconds=60)
    worker.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    worker.send_signal(signal.SIGTERM)
    out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, out
    assert not pid_alive(flow_pid)
    back = read_flow_run(run.id)
    assert (back.state_type, back.worker_id) == ("SCHEDULED", None), back
    assert "handed back" in back.state_message



def test_max_runs_stops_the_worker_after_that_many(project: Path) -> None:
    deploy_entrypoint("flows.py:add", "three", source=project, parameters={"a": 1})
    runs = [run_deployment("add/three", timeout=0) for _ in range(3)]
    worker = start_worker("--max-runs", "2", "--limit", "1")
    out, _ = worker.communicate(timeout=120)
    assert worker.returncode == 0, out
    assert sorted(state_of(r.id) for r in runs) == ["COMPLETED", "COMPLETED", "SCHEDULED"]


def test_a_worker_schedules_and_runs_a_deployments_interval_runs(backend, project) -> None:
    """Each poll ticks the scheduler: due fire times become runs the worker then runs.

    The workers' clocks are injected (a minute apart, in the past so that the record's
    state times stay in order with the flow processes' own), nothing waits.
    """
    dep = deploy_entrypoint("flows.py:add", "every-minute", source=project,
                            parameters={"a": 1}, schedules=[_interval(60)])
    start = time.time() - 200
    for minute in range(3):
        Worker(run_once=True, poll_interval=0.05, clock=lambda m=minute: start + 60 * m).start()
    with connection() as conn:
        rows = conn.execute(
            "SELECT id, state_type, scheduled_start_time, idempotency_key FROM flow_runs "
            "WHERE deployment_id = ? AND state_type != 'SCHEDULED' "
            "ORDER BY scheduled_start_time", (dep.id,)).fetchall()
        slug = conn.execute("SELECT slug FROM deployment_schedules").fetchone()[0]
    assert [r[1] for r in rows] == ["COMPLETED", "COMPLETED"]
    first, second = rows[0][2], rows[1][2]
    assert second - first == pytest.approx(60)
    assert start < first <= start + 60 < second <= start + 120
    assert all(r[3].startswith(f"{dep.id}:{slug}:") for r in rows)  # made by the scheduler


def _interval(seconds: float) -> Any:
    from fluvial.schedules import Interval

    return Interval(seconds)


def test_a_worker_survives_losing_its_postgresql_connection(pg_server, project, monkeypatch):
    import fluvial.store as store

    monkeypatch.setenv("FLUVIAL_DATABASE_URL", pg_server.create_database())
    store._reset_for_tests()
    deploy_entrypoint("flows.py:add", "resilient", source=project, parameters={"a": 1})
    worker = start_worker()
    try:
        with connection() as conn:
            wait_until(lambda: conn.execute("SELECT count(*) FROM workers").fetchone()[0],
                       what="the worker to register")
            killed = conn.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE application_name = 'fluvial' AND pid <> pg_backend_pid()").fetchone()[0]
        assert killed >= 1
        run = run_deployment("add/resilient", timeout=120)
        assert run.state_type == "COMPLETED"
        assert worker.poll() is None
    finally:
        worker.send_signal(signal.SIGTERM)
        out, _ = worker.communicate(timeout=60)
    assert worker.returncode == 0, out
