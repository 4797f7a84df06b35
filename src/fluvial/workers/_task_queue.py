"""Background task runs in the record: ``Task.delay`` queues them, task workers run them.

A queued run is a row of ``task_queue`` (its task's key, the call's arguments
cloudpickled, a status ``SCHEDULED`` -> ``RUNNING`` -> ``COMPLETED``/``FAILED``/
``CRASHED``/``CANCELLED``, and when done its final ``State`` cloudpickled) and a
row of ``task_runs`` with the same id (so ``runs`` and a UI see it). A task worker
claims rows of the task keys it serves, atomically (the same single guarded
``UPDATE … RETURNING`` on SQLite, ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, as
flow run claims). A task worker that stops heartbeating gives its running rows
back to the queue (at least once, as in Prefect: a background task may run
again after a crash).

:class:`DelayedFuture` is what ``delay`` returns: ``result()``/``wait()``/``state``
poll the row.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from fluvial.store.dialects import POSTGRESQL, dialect_of, id_table

if TYPE_CHECKING:
    from fluvial.states import State
    from fluvial.tasks import Task

__all__ = ["DelayedFuture", "claim_task_run", "enqueue", "finish_task_run", "requeue_worker"]

_FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


def _dumps(value: Any) -> str:
    import cloudpickle

    return base64.b64encode(cloudpickle.dumps(value)).decode("ascii")


def _loads(text: str) -> Any:
    import cloudpickle

    return cloudpickle.loads(base64.b64decode(text))


def _task_state(conn: Any, run_id: str, type_: str, name: str, message: str | None) -> None:
    from fluvial.store import rows

    rows.insert_states(conn, [(run_id, type_, name, message, time.time(), None)])
    rows.refresh_task_runs(conn, [run_id])


def enqueue(task: Task, args: tuple, kwargs: dict) -> DelayedFuture:
    """Queue one run of ``task`` with these arguments; its future, at once."""
    from fluvial.deployments._records import connection
    from fluvial.exceptions import SerializationFailure
    from fluvial.store import store_enabled
    from fluvial.store.connection import transaction

    if not store_enabled():
        raise RuntimeError(f"task {task.name!r}: delay() queues the run in the run record, "
                           "which is off (FLUVIAL_STORE)")
    task._check_arguments(args, kwargs)
    try:
        payload = _dumps((args, kwargs))
    except Exception as exc:
        raise SerializationFailure(
            f"task {task.name!r}: the arguments of delay() cannot be pickled: {exc}") from exc
    run_id = str(uuid.uuid4())
    now = time.time()
    tags = sorted(getattr(task, "tags", ()) or ())
    with connection() as conn, transaction(conn):
        conn.execute(
            "INSERT INTO task_queue (id, task_key, task_name, payload, status, created) "
            "VALUES (?, ?, ?, ?, 'SCHEDULED', ?)", (run_id, task.task_key, task.name, payload, now))
        conn.execute(
            "INSERT INTO task_runs (id, flow_run_id, name, task_key, tags, created) "
            "VALUES (?, NULL, ?, ?, ?, ?)",
            (run_id, f"{task.name}-{run_id[:8]}", task.task_key, json.dumps(tags), now))
        _task_state(conn, run_id, "SCHEDULED", "Scheduled", "waiting for a task worker")
    return DelayedFuture(run_id, task.name)


def claim_task_run(conn: Any, worker_id: str, task_keys: Sequence[str]
                   ) -> tuple[str, str, str] | None:
    """Claim the oldest queued run of one of ``task_keys``: (id, task_key, payload), or None."""
    from fluvial.store.connection import rollback, transaction

    keys = json.dumps(list(task_keys))
    dialect = dialect_of(conn)
    pick = f"""SELECT q.id FROM task_queue q WHERE q.status = 'SCHEDULED'
               AND q.task_key IN (SELECT j.value FROM {id_table(dialect)})
               ORDER BY q.created LIMIT 1"""
    if conn.execute(pick, (keys,)).fetchone() is None:
        return None
    claim = """UPDATE task_queue SET status = 'RUNNING', worker_id = ?2, claimed_at = ?3
               WHERE id = {target} AND status = 'SCHEDULED' RETURNING id, task_key, payload"""
    if dialect == POSTGRESQL:
        conn.execute("BEGIN")
        try:
            row = conn.execute(pick + " FOR UPDATE SKIP LOCKED", (keys,)).fetchone()
            claimed = None if row is None else conn.execute(
                claim.format(target="?1"), (row[0], worker_id, time.time())).fetchone()
            if claimed is not None:
                _task_state(conn, claimed[0], "RUNNING", "Running", f"task worker {worker_id}")
            conn.execute("COMMIT")
        except BaseException:
            rollback(conn)
            raise
    else:
        with transaction(conn):
            claimed = conn.execute(claim.format(target=f"({pick})"),
                                   (keys, worker_id, time.time())).fetchone()
            if claimed is not None:
                _task_state(conn, claimed[0], "RUNNING", "Running", f"task worker {worker_id}")
    return None if claimed is None else (str(claimed[0]), claimed[1], claimed[2])


def finish_task_run(conn: Any, run_id: str, state: State) -> None:
    """Store a run's final state (with its result) and settle its task run row."""
    from fluvial.states import Failed
    from fluvial.store.connection import transaction

    try:
        body = _dumps(state)
    except Exception as exc:  # an unpicklable result: the run fails, saying why
        state = Failed(None, f"the result of the background task could not be pickled: {exc}")
        body = _dumps(state)
    with transaction(conn):
        conn.execute("UPDATE task_queue SET status = ?, result = ?, finished = ? WHERE id = ?",
                     (state.type.value, body, time.time(), run_id))
        _task_state(conn, run_id, state.type.value, state.name, state.message)


def requeue_worker(conn: Any, worker_id: str) -> int:
    """Give the running rows of a gone worker back to the queue (inside a transaction)."""
    rows = conn.execute(
        "SELECT id FROM task_queue WHERE worker_id = ? AND status = 'RUNNING'", (worker_id,)
    ).fetchall()
    for (run_id,) in rows:
        conn.execute("UPDATE task_queue SET status = 'SCHEDULED', worker_id = NULL, "
                     "claimed_at = NULL WHERE id = ?", (run_id,))
        _task_state(conn, run_id, "SCHEDULED", "Scheduled",
                    f"task worker {worker_id} is gone; queued again")
    return len(rows)


class DelayedFuture:
    """The future of a background task run (``Task.delay``): it reads the record."""

    def __init__(self, task_run_id: str, task_name: str, poll_interval: float = 0.1) -> None:
        self.task_run_id = uuid.UUID(task_run_id)
        self.task_name = task_name
        self.poll_interval = poll_interval
        self._final: State | None = None

    def __repr__(self) -> str:
        return f"DelayedFuture({self.task_name!r}, {self.task_run_id})"

    def _read(self) -> tuple[str, str | None]:
        from fluvial.deployments._records import connection

        with connection() as conn:
            row = conn.execute("SELECT status, result FROM task_queue WHERE id = ?",
                               (str(self.task_run_id),)).fetchone()
        if row is None:
            raise LookupError(f"background task run {self.task_run_id} is not in the record")
        return row[0], row[1]

    def done(self) -> bool:
        return self._final is not None or self._read()[0] in _FINAL

    def wait(self, timeout: float | None = None) -> None:
        """Block until the run is final or ``timeout`` seconds have passed."""
        if self._final is not None:
            return
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            status, body = self._read()
            if status in _FINAL and body is not None:
                self._final = _loads(body)
                return
            if deadline is not None and time.monotonic() >= deadline:
                return
            time.sleep(self.poll_interval)

    @property
    def state(self) -> State:
        """The final state once known, else ``Scheduled``/``Running`` as recorded."""
        from fluvial.states import State, StateType

        if self._final is not None:
            return self._final
        status, body = self._read()
        if status in _FINAL and body is not None:
            self._final = _loads(body)
            return self._final
        return State(StateType(status), status.title())

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
        """The run's return value; raises its exception (or ``TimeoutError``)."""
        self.wait(timeout)
        if self._final is None:
            raise TimeoutError(f"background task run {self.task_run_id} did not finish "
                               f"within {timeout} s")
        return self._final.result(raise_on_failure=raise_on_failure)
