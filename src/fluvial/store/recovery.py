"""Crash recovery: runs whose driver process died are marked ``CRASHED``.

A flow run that is not final (no state yet, PENDING, RUNNING, ...) and whose
driver ``pid`` on this host is gone will never finish. On opening the store,
such a flow run gets a ``CRASHED``/``Crashed`` state with the message
``driver process <pid> died``, and so do its non-final task runs.

Recovery runs once per process and database (:func:`recover_once`): when a
driver opens its recorder, and when the CLI starts. Reads never recover, so
they never write.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Sequence

from fluvial.exceptions import StoreError
from fluvial.store import rows
from fluvial.store.connection import (
    Connection,
    DatabaseTarget,
    database_errors,
    database_key,
    database_target,
    open_database,
    transaction,
)
from fluvial.store.schema import OPEN_RUN

__all__ = ["pid_alive", "recover_crashed_runs", "recover_once", "reset"]

_lock = threading.Lock()
_recovered: set[str] = set()


def recover_once(target: DatabaseTarget | None = None, conn: Connection | None = None) -> list[str]:
    """:func:`recover_crashed_runs`, the first time this process asks for this database.

    Returns the ids of the flow runs marked crashed; ``[]`` on later calls.
    ``conn``, if given, is used (and left open); otherwise one is opened and closed.
    """
    target = target or database_target()
    key = database_key(target)
    with _lock:
        if key in _recovered:
            return []
        own = conn is None
        conn = conn if conn is not None else open_database(target)
        try:
            crashed = recover_crashed_runs(conn)
        except database_errors() as exc:
            raise StoreError(f"crash recovery failed on the fluvial store: {exc}") from exc
        finally:
            if own:
                conn.close()
        _recovered.add(key)
        return crashed


def reset() -> None:
    """Forget which databases this process has recovered (tests)."""
    with _lock:
        _recovered.clear()



def pid_alive(pid: int, started_before: float | None = None) -> bool:
    """Whether process ``pid`` runs on this host (a zombie counts as dead).

    With psutil installed and ``started_before`` given (an epoch time), a process
    that started after it is a reused pid, so the original is dead.
    """
    if pid == os.getpid():
        return True
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            process = psutil.Process(pid)
            if process.status() == psutil.STATUS_ZOMBIE:
                return False
            if started_before is not None and started_before > 1e9:
                return process.create_time() <= started_before + 1.0
            return True
        except psutil.NoSuchProcess:
            return False
        except psutil.Error:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: alive, owned by someone else
        return True
    return True


def _open_flow_runs(conn: Connection, hostname: str) -> list[tuple[str, int | None, float | None]]:
    return conn.execute(
        f"SELECT id, pid, created FROM flow_runs WHERE hostname = ? AND {OPEN_RUN}", (hostname,)
    ).fetchall()


def recover_crashed_runs(conn: Connection, hostname: str | None = None) -> list[str]:
    """Mark the open flow runs of dead drivers on this host CRASHED; return their ids."""
    hostname = hostname or socket.gethostname()
    dead = {
        run_id: pid
        for run_id, pid, created in _open_flow_runs(conn, hostname)
        if pid is not None and not pid_alive(pid, created)
    }
    if not dead:
        return []
    with transaction(conn):
        # Again under the write lock: another process may have recovered them meanwhile.
        still_open = {run_id for run_id, _, _ in _open_flow_runs(conn, hostname)}
        crashed = [run_id for run_id in dead if run_id in still_open]
        _mark_crashed(conn, crashed, dead)
    return crashed


def _mark_crashed(conn: Connection, flow_run_ids: Sequence[str], pids: dict) -> None:
    now = time.time()
    states: list[rows.StateRow] = []
    task_ids: list[str] = []
    for flow_run_id in flow_run_ids:
        message = f"driver process {pids[flow_run_id]} died"
        states.append((flow_run_id, "CRASHED", "Crashed", message, now, None))
        for (task_id,) in conn.execute(
            f"SELECT id FROM task_runs WHERE flow_run_id = ? AND {OPEN_RUN}", (flow_run_id,)
        ):
            task_ids.append(task_id)
            states.append((task_id, "CRASHED", "Crashed", message, now, None))
    rows.insert_states(conn, states)
    rows.refresh_flow_runs(conn, flow_run_ids)
    rows.refresh_task_runs(conn, task_ids)
