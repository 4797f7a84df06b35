"""Finishing runs whose process is gone: lapsed workers, and ``Cancelling`` runs.

Any worker or ``serve()`` process runs :func:`reap` on each poll; every step is
a guarded update in a write transaction, so several reapers at once do each
thing once.

* A worker whose heartbeat is older than ``heartbeat_timeout`` seconds is gone
  (SIGKILL, power loss): its row is deleted and each run it held that is not
  final becomes ``Crashed`` ("worker … stopped heartbeating"), or ``Cancelled``
  if it was ``Cancelling``.
* A crashed run of a deployment with ``retries`` left (``attempt <= retries``) is
  scheduled again at once (``AwaitingRetry``), whoever marked it crashed.
* A task worker that is gone gives its running background task runs back to the
  queue (``Task.delay``: at least once).
* A ``Cancelling`` run with no worker whose process on this host is gone becomes
  ``Cancelled``.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from fluvial.deployments._records import set_state

__all__ = ["reap", "reschedule_if_retries_left"]

_OPEN = "('PENDING', 'RUNNING', 'CANCELLING', 'PAUSED', 'SCHEDULED')"


def reschedule_if_retries_left(conn: Any, run_id: str, now: float) -> bool:
    """Schedule a crashed deployment run again if its deployment allows another attempt.

    Runs inside the caller's transaction; True if it was rescheduled.
    """
    row = conn.execute(
        """SELECT r.attempt, d.retries FROM flow_runs r JOIN deployments d
             ON d.id = r.deployment_id WHERE r.id = ? AND r.state_type = 'CRASHED'""",
        (run_id,),
    ).fetchone()
    if row is None or not row[1] or (row[0] or 0) > row[1]:
        return False
    conn.execute(
        "UPDATE flow_runs SET worker_id = NULL, claimed_at = NULL, infrastructure_pid = NULL, "
        "pid = NULL, hostname = NULL, scheduled_start_time = ? WHERE id = ?", (now, run_id))
    set_state(conn, run_id, "SCHEDULED", "AwaitingRetry",
              f"retry {row[0]} of {row[1]} after a crash")
    return True


def _reap_workers(conn: Any, now: float, heartbeat_timeout: float,
                  own_id: str | None) -> list[str]:
    from fluvial.store.connection import transaction

    cutoff = now - heartbeat_timeout
    lapsed = [r[0] for r in conn.execute(
        "SELECT id FROM workers WHERE heartbeat < ?", (cutoff,)) if r[0] != own_id]
    # runs held by a worker id with no row at all (its row was reaped, or never written)
    orphaned = conn.execute(
        f"""SELECT DISTINCT worker_id FROM flow_runs r WHERE worker_id IS NOT NULL
              AND state_type IN {_OPEN} AND state_type != 'SCHEDULED'
              AND claimed_at < ?
              AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = r.worker_id)""",
        (cutoff,),
    ).fetchall()
    lapsed += [r[0] for r in orphaned if r[0] != own_id]
    reaped: list[str] = []
    for worker_id in lapsed:
        with transaction(conn):
            gone = conn.execute("DELETE FROM workers WHERE id = ? AND heartbeat < ?",
                                (worker_id, cutoff)).rowcount
            runs = conn.execute(
                f"""SELECT id, state_type FROM flow_runs WHERE worker_id = ?
                      AND state_type IN {_OPEN} AND state_type != 'SCHEDULED'""",
                (worker_id,),
            ).fetchall()
            from fluvial.workers._task_queue import requeue_worker

            requeued = requeue_worker(conn, worker_id)  # a task worker's background runs
            if not gone and not runs and not requeued:
                continue  # another reaper was first, or it came back
            for run_id, state in runs:
                if state == "CANCELLING":
                    set_state(conn, run_id, "CANCELLED", "Cancelled",
                              f"worker {worker_id} is gone")
                    continue
                set_state(conn, run_id, "CRASHED", "Crashed",
                          f"worker {worker_id} stopped heartbeating")
                reschedule_if_retries_left(conn, run_id, now)
                reaped.append(str(run_id))
            # runs it held that crashed meanwhile (their own process was killed with it)
            for (run_id,) in conn.execute(
                "SELECT id FROM flow_runs WHERE worker_id = ? AND state_type = 'CRASHED'",
                (worker_id,),
            ).fetchall():
                reschedule_if_retries_left(conn, run_id, now)
    return reaped


def _reap_cancelling(conn: Any, hostname: str) -> list[str]:
    from fluvial.store.connection import transaction
    from fluvial.store.recovery import pid_alive

    rows = conn.execute(
        """SELECT id, coalesce(infrastructure_pid, pid), hostname FROM flow_runs
           WHERE state_type = 'CANCELLING' AND worker_id IS NULL"""
    ).fetchall()
    done = []
    for run_id, pid, host in rows:
        if pid is not None and host == hostname and pid_alive(pid):
            continue
        if pid is not None and host not in (None, hostname):
            continue  # another machine's process: its host decides
        with transaction(conn):
            still = conn.execute(
                "SELECT 1 FROM flow_runs WHERE id = ? AND state_type = 'CANCELLING'", (run_id,)
            ).fetchone()
            if still:
                set_state(conn, run_id, "CANCELLED", "Cancelled", "its process is gone")
                done.append(str(run_id))
    return done


def reap(conn: Any, now: float | None = None, heartbeat_timeout: float = 30.0,
         own_id: str | None = None, hostname: str | None = None) -> dict[str, list[str]]:
    """One reaping pass; the ids of the runs it crashed and of those it cancelled."""
    now = time.time() if now is None else now
    return {
        "crashed": _reap_workers(conn, now, heartbeat_timeout, own_id),
        "cancelled": _reap_cancelling(conn, hostname or socket.gethostname()),
    }
