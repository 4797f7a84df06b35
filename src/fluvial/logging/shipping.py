"""Run logs written on a cluster worker, shipped back to the driver with the run's outcome.

On a Dask or Ray worker there is no recorder of the driver's run record: without this,
what a task run logs there (``get_run_logger()``, ``print`` with ``log_prints``) stays in
the worker's own log. So where a remote runner runs a task run
(``fluvial.worker.entry.run_in_worker(..., picklable=True)``), :func:`capture` collects
the run-log records of that run (the run record's handler takes them instead of a
recorder: nothing is recorded on the worker, even when it is the driver's own process),
and :func:`with_logs` hands them back in the run's final state, a :class:`LoggedState`
(the same state, with a ``logs`` tuple that travels when it is pickled). In the driver,
:func:`record_shipped` writes them into the run record once, as the state arrives; the
runner calls it where it receives a run's outcome.

A log entry is ``(run id text, level, message, created)``.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from fluvial.states import State, _rebuild_state

__all__ = ["LoggedState", "capture", "record_shipped", "shipping", "with_logs"]

LogEntry = tuple[str, int, str, float]

_shipped: ContextVar[list[LogEntry] | None] = ContextVar("fluvial_shipped_logs", default=None)
_installed = False


def shipping() -> list[LogEntry] | None:
    """The list the current run's log records go to, when they are being captured."""
    return _shipped.get()


def _install() -> None:
    """Once per process: the run record's handler on the ``fluvial`` logger, which must
    pass INFO records (a worker process has not run a flow, which would set both)."""
    global _installed
    if _installed:
        return
    _installed = True
    from fluvial.logging import StoreHandler

    root = logging.getLogger("fluvial")
    if not any(isinstance(h, StoreHandler) for h in root.handlers):
        root.addHandler(StoreHandler())
    if root.level == logging.NOTSET:
        root.setLevel(logging.INFO)


@contextlib.contextmanager
def capture() -> Iterator[list[LogEntry]]:
    """Inside the block, run-log records go to the yielded list instead of a recorder."""
    _install()
    logs: list[LogEntry] = []
    token = _shipped.set(logs)
    try:
        yield logs
    finally:
        _shipped.reset(token)


class LoggedState(State):
    """A final state that carries the run logs written where the run ran."""

    __slots__ = ("logs",)
    logs: tuple[LogEntry, ...]

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_logged, (State.__reduce__(self)[1], self.logs))


def _rebuild_logged(state_args: tuple, logs: tuple[LogEntry, ...]) -> LoggedState:
    return _logged(_rebuild_state(*state_args), logs)


def _logged(state: State, logs: tuple[LogEntry, ...]) -> LoggedState:
    logged = LoggedState.__new__(LoggedState)
    for slot in State.__slots__:
        setattr(logged, slot, getattr(state, slot))
    logged.logs = logs
    return logged


def with_logs(state: State, logs: list[LogEntry]) -> State:
    """``state`` carrying ``logs`` (itself when there are none)."""
    return _logged(state, tuple(logs)) if logs else state


def record_shipped(state: Any) -> None:
    """Write the logs a :class:`LoggedState` carries into this process's run record, once
    (they are taken off the state). Anything else: nothing to do."""
    if type(state) is not LoggedState or not state.logs:
        return
    logs, state.logs = state.logs, ()
    try:
        from fluvial.store import get_recorder

        recorder = get_recorder()
    except Exception as exc:  # noqa: BLE001 - no record: the logs are only lost from it
        logging.getLogger("fluvial.store").warning(
            "%d log line(s) of a remote task run were not recorded: %s", len(logs), exc)
        return
    if recorder is None:
        return
    for run_id, level, message, created in logs:
        try:
            recorder.log(uuid.UUID(run_id), level, message, created)
        except (ValueError, TypeError):  # a malformed entry: skip it, keep the others
            continue
