"""Controlling flow runs through the record: cancel, pause and resume (``prefect.flow_runs``).

    cancel_flow_run(run_id, grace=10.0)     a waiting run -> Cancelled; a running one ->
                                            Cancelling, its process is stopped
    pause_flow_run(timeout=3600, ...)       inside a flow: Paused until resumed (or timeout)
    resume_flow_run(flow_run_id, run_input) a paused run goes on, handed ``run_input``

Cancelling a run that a worker holds marks it ``Cancelling``: its worker sends the
run's process SIGTERM, then SIGKILL after its grace period, and records
``Cancelled``. A run started outside a worker (a script) on this host is signalled
here, the same way. A run that is not running yet (``Scheduled``, ``Pending``
without a worker, ``Paused``) is ``Cancelled`` at once.

``pause_flow_run`` needs the run record (``FLUVIAL_STORE`` on): the run's state
becomes ``Paused`` there, the flow's code waits (polling the record every
``poll_interval`` seconds) until someone resumes it (``fluvial runs resume RUN``)
and gets the ``run_input`` they gave, or, after ``timeout`` seconds,
``FlowPauseTimeout`` is raised in the flow (which then fails, unless it catches it).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from fluvial.exceptions import FlowPauseTimeout, MissingContextError, NotPausedError

__all__ = ["cancel_flow_run", "pause_flow_run", "resume_flow_run"]

_FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def _read(conn: Any, run_id: str) -> tuple[Any, ...]:
    row = conn.execute(
        "SELECT state_type, worker_id, coalesce(infrastructure_pid, pid), hostname "
        "FROM flow_runs WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        from fluvial.store import RunNotFoundError

        raise RunNotFoundError(f"no flow run {run_id!r}")
    return tuple(row)


def cancel_flow_run(run_id: str | uuid.UUID, grace: float = 10.0,
                    wait: bool = True) -> str:
    """Cancel flow run ``run_id``; the state type it is in afterwards.

    ``CANCELLED`` when it was not running (or its process is stopped here and ``wait``);
    ``CANCELLING`` when its worker will stop it. A final run raises ``ValueError``.
    """
    from fluvial.deployments._records import connection, set_state
    from fluvial.store.connection import transaction
    from fluvial.store.recovery import pid_alive

    run_id = str(run_id)
    with connection() as conn:
        with transaction(conn):
            state, worker_id, pid, host = _read(conn, run_id)
            if state in _FINAL:
                raise ValueError(f"flow run {run_id} is already {state.title()}")
            running_here = (pid is not None and host == socket.gethostname()
                            and pid != os.getpid() and pid_alive(pid))
            waiting = state in ("SCHEDULED", None) or (
                state in ("PENDING", "PAUSED") and worker_id is None and not running_here)
            if waiting:
                set_state(conn, run_id, "CANCELLED", "Cancelled", "cancelled before it ran")
                return "CANCELLED"
            if state != "CANCELLING":
                set_state(conn, run_id, "CANCELLING", "Cancelling", "cancel requested")
        if worker_id is not None or not running_here or not wait:
            return "CANCELLING"
        _stop_process(pid, grace)
        with transaction(conn):
            if _read(conn, run_id)[0] not in _FINAL:
                set_state(conn, run_id, "CANCELLED", "Cancelled",
                          f"cancelled; process {pid} was stopped")
        return "CANCELLED"


def _stop_process(pid: int, grace: float) -> None:
    from fluvial.store.recovery import pid_alive

    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while pid_alive(pid):
        time.sleep(0.05)


def pause_flow_run(timeout: float = 3600, poll_interval: float = 1.0,
                   wait_for_input: Any = None, key: str | None = None,
                   clock: Callable[[], float] = time.monotonic) -> Any:
    """Pause the current flow run until it is resumed; what the resumer gave as input.

    With ``wait_for_input`` (a type: ``dict``, ``int``, a pydantic model ...), the
    input is validated as that type; otherwise it is returned as given (or None).
    """
    from fluvial.context import _flow_run
    from fluvial.deployments._records import connection, set_state
    from fluvial.store import store_enabled
    from fluvial.store.connection import transaction

    ctx = _flow_run.get()
    if ctx is None:
        raise MissingContextError("pause_flow_run() must be called inside a flow run")
    if not store_enabled():
        raise RuntimeError("pause_flow_run() needs the run record (FLUVIAL_STORE is off)")
    if timeout <= 0:
        raise ValueError(f"pause_flow_run timeout must be > 0, got {timeout!r}")
    run_id = str(ctx.flow_run.id)
    recorder = _flush_recorder()
    with connection() as conn:
        _wait_for_row(conn, run_id, recorder)
        with transaction(conn):
            conn.execute("UPDATE flow_runs SET run_input = NULL WHERE id = ?", (run_id,))
            set_state(conn, run_id, "PAUSED", "Paused",
                      f"paused (key {key})" if key else "paused; resume with "
                      f"`fluvial runs resume {run_id}`")
        deadline = clock() + timeout
        while True:
            state, run_input = conn.execute(
                "SELECT state_type, run_input FROM flow_runs WHERE id = ?", (run_id,)).fetchone()
            if state in _FINAL:
                raise RuntimeError(f"flow run {ctx.flow_run.name!r} became {state.title()} "
                                   "while paused")
            if state not in ("PAUSED", "CANCELLING"):  # Cancelling: its process is stopped
                break
            if clock() >= deadline:
                with transaction(conn):
                    set_state(conn, run_id, "RUNNING", "Running", "pause timed out")
                raise FlowPauseTimeout(
                    f"flow run {ctx.flow_run.name!r} was not resumed within {timeout} s")
            time.sleep(poll_interval)
    value = json.loads(run_input) if run_input is not None else None
    if wait_for_input is None or value is None:
        return value
    from pydantic import TypeAdapter

    return TypeAdapter(wait_for_input).validate_python(value)


def _flush_recorder() -> Any:
    from fluvial.store import get_recorder

    recorder = get_recorder()
    if recorder is not None:
        recorder.flush(timeout=30)
    return recorder


def _wait_for_row(conn: Any, run_id: str, recorder: Any) -> None:
    for _ in range(100):
        if conn.execute("SELECT 1 FROM flow_runs WHERE id = ?", (run_id,)).fetchone():
            return
        time.sleep(0.05)
    raise RuntimeError(f"flow run {run_id} is not in the run record")


def resume_flow_run(flow_run_id: str | uuid.UUID, run_input: Any = None) -> None:
    """Resume a paused flow run, handing it ``run_input`` (a JSON value)."""
    from fluvial.deployments._records import connection, set_state
    from fluvial.store.connection import transaction

    run_id = str(flow_run_id)
    try:
        body = None if run_input is None else json.dumps(run_input)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"run_input must be a JSON value: {exc}") from None
    with connection() as conn, transaction(conn):
        state = _read(conn, run_id)[0]
        if state != "PAUSED":
            raise NotPausedError(f"flow run {run_id} is {str(state).title()}, not Paused")
        conn.execute("UPDATE flow_runs SET run_input = ? WHERE id = ?", (body, run_id))
        set_state(conn, run_id, "RUNNING", "Resumed", "resumed")
