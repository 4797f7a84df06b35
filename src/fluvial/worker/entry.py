"""The one function every runner calls where the task runs.

``run_in_worker`` runs the task engine and always returns a final ``State``: a
``BaseException`` that escapes the engine (a bug, ``SystemExit``, ``KeyboardInterrupt``
raised by the task) is a *crash*, returned as a ``Crashed`` state whose
``CrashedRun`` error carries ``attempts`` (the attempt that crashed counts). With
``picklable=True`` (every runner that moves the state to another process) a result or
exception that cannot be pickled becomes a ``Failed`` state naming the task.

Whether a crashed run is retried is decided in the driver
(``fluvial.orchestration.crashes``), the same for every runner.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from fluvial.exceptions import CrashedRun
from fluvial.logging.shipping import capture, with_logs
from fluvial.runs import TaskRun
from fluvial.states import Crashed, State
from fluvial.worker.pickling import picklable_state
from fluvial.worker.task_engine import run_task

__all__ = ["crash_state", "run_in_worker", "run_shipping_logs"]

# What a backend raises into a running task to stop it: not a crash of the task, so it
# is left to the backend (turning it into a state confuses e.g. Dask's worker restarts).
_BACKEND_SIGNALS = (asyncio.CancelledError, GeneratorExit)


def crash_state(task_run: TaskRun, message: str, cause: BaseException | None = None,
                attempts: int | None = None) -> State:
    """The ``Crashed`` state of ``task_run``; ``attempts`` is how many attempts it has
    made counting the one that crashed, when known (None: the worker died)."""
    error = CrashedRun(message)
    error.attempts = attempts  # type: ignore[attr-defined]
    if cause is not None:
        error.__cause__ = cause
    return Crashed(error, message)


def run_in_worker(task_run: TaskRun, upstream_states: Sequence[State] = (), n_data: int = 0,
                  picklable: bool = False) -> State:
    """Run one task run to a final state, wherever it runs; never raises. With
    ``picklable`` (another process gets the state) the run's log records come back in it
    (:mod:`fluvial.logging.shipping`)."""
    if picklable:
        return _run_shipped(task_run, upstream_states, n_data)
    start = task_run.run_count
    try:
        state = run_task(task_run, upstream_states, n_data)
    except _BACKEND_SIGNALS:  # the backend stopping the run (a Dask worker closing): its own
        raise
    except BaseException as exc:  # noqa: BLE001 - the engine itself broke: the run crashed
        attempts = max(task_run.run_count, start + 1)
        task_run.run_count = start  # the driver counts the crash (fluvial.orchestration)
        return crash_state(task_run, f"Task run {task_run.name!r} crashed: the engine raised "
                                     f"{exc!r}", exc, attempts)
    return state


def _run_shipped(task_run: TaskRun, upstream_states: Sequence[State], n_data: int) -> State:
    """The run for another process: its state picklable, its log records in it."""
    with capture() as logs:
        state = run_in_worker(task_run, upstream_states, n_data)
    return with_logs(picklable_state(task_run, state), logs)


def run_shipping_logs(task_run: TaskRun, upstream_states: Sequence[State] = (),
                      n_data: int = 0) -> State:
    """``run_in_worker``, with the run's log records in its state (for a runner that
    pickles states itself)."""
    with capture() as logs:
        state = run_in_worker(task_run, upstream_states, n_data)
    return with_logs(state, logs)
