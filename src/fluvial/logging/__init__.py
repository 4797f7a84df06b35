"""Run loggers and ``log_prints``.

``get_run_logger()`` returns a standard ``logging.LoggerAdapter`` whose records carry
the run's name and id (``caplog`` and any handler see them). fluvial adds one console
handler to the ``fluvial`` logger the first time a flow runs, unless the application
configured handlers of its own. ``log_prints`` sends ``print`` output of a run to its
logger: ``print`` is wrapped once, and the wrapper costs one context lookup when no
run asked for it. ``fluvial.logging.loggers`` is the Prefect import path of the same
functions (``flow_run_logger``, ``task_run_logger``, ``get_run_logger``).
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import sys
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from fluvial.context import _flow_run, _task_run
from fluvial.exceptions import MissingContextError

__all__ = ["disable_run_logger", "flow_run_logger", "get_logger", "get_run_logger",
           "print_as_log", "task_run_logger"]

_disabled: ContextVar[bool] = ContextVar("fluvial_run_logger_disabled", default=False)
_print_logger: ContextVar[logging.LoggerAdapter | None] = ContextVar("fluvial_print_logger",
                                                                      default=None)
_configured = False
_original_print = builtins.print


def get_logger(name: str | None = None) -> logging.Logger:
    return logging.getLogger("fluvial" if name is None else f"fluvial.{name}")


class RunLogger(logging.LoggerAdapter):
    def process(self, msg: Any, kwargs: Any) -> tuple[Any, Any]:
        kwargs["extra"] = {**self.extra, **kwargs.get("extra", {})}  # type: ignore[dict-item]
        return f"{self.extra['run_name']} - {msg}", kwargs  # type: ignore[index]


def flow_run_logger(flow_run: Any, flow: Any = None, **extra: Any) -> logging.LoggerAdapter:
    """A logger whose records carry ``flow_run``'s name and id (``flow`` gives the flow's
    name when the run does not carry it), as ``prefect.logging.loggers.flow_run_logger``."""
    flow_name = getattr(flow, "name", None) or getattr(getattr(flow_run, "flow", None),
                                                          "name", None)
    base = {"run_name": flow_run.name, "flow_run_id": str(flow_run.id),
            "flow_run_name": flow_run.name, "flow_name": flow_name}
    return RunLogger(logging.getLogger("fluvial.flow_runs"), {**base, **extra})


def task_run_logger(task_run: Any, task: Any = None, flow_run: Any = None, flow: Any = None,
                    **extra: Any) -> logging.LoggerAdapter:
    """A logger whose records carry ``task_run``'s name and id (and its flow run's), as
    ``prefect.logging.loggers.task_run_logger``. The flow run defaults to the current one."""
    if flow_run is None:
        flow_ctx = _flow_run.get()
        if flow_ctx is not None and flow_ctx.flow_run.id == task_run.flow_run_id:
            flow_run, flow = flow_ctx.flow_run, flow or flow_ctx.flow
    flow_run_id = flow_run.id if flow_run is not None else task_run.flow_run_id
    base = {"run_name": task_run.name, "task_run_id": str(task_run.id),
            "task_run_name": task_run.name,
            "task_name": getattr(task, "name", None) or getattr(task_run, "task_name", None),
            "flow_run_id": str(flow_run_id) if flow_run_id else None}
    if flow_run is not None:
        base["flow_run_name"] = flow_run.name
        base["flow_name"] = getattr(flow, "name", None) or getattr(
            getattr(flow_run, "flow", None), "name", None)
    return RunLogger(logging.getLogger("fluvial.task_runs"), {**base, **extra})


def get_run_logger() -> logging.LoggerAdapter:
    """A logger for the current task run or flow run."""
    if _disabled.get():
        return logging.LoggerAdapter(_silent_logger(), {})
    task_ctx = _task_run.get()
    if task_ctx is not None:
        run = task_ctx.task_run
        extra = {"run_name": run.name, "task_run_id": str(run.id), "task_run_name": run.name,
                 "flow_run_id": str(run.flow_run_id) if run.flow_run_id else None}
        return RunLogger(logging.getLogger("fluvial.task_runs"), extra)
    flow_ctx = _flow_run.get()
    if flow_ctx is not None:
        return flow_run_logger(flow_ctx.flow_run, flow_ctx.flow)
    raise MissingContextError("get_run_logger() was called outside a flow run or task run")


def _silent_logger() -> logging.Logger:
    silent = logging.getLogger("fluvial.disabled_run_logger")
    silent.disabled = True
    silent.propagate = False
    return silent


@contextlib.contextmanager
def disable_run_logger() -> Iterator[None]:
    """Make ``get_run_logger()`` return a silent logger (for calling ``task.fn`` in tests)."""
    token = _disabled.set(True)
    try:
        yield
    finally:
        _disabled.reset(token)


class StoreHandler(logging.Handler):
    """Sends records of run loggers (those carrying a run id) to the run record."""

    def emit(self, record: logging.LogRecord) -> None:
        run_id = getattr(record, "task_run_id", None) or getattr(record, "flow_run_id", None)
        if run_id is None:
            return
        shipped = _shipping()
        if shipped is not None:  # on a cluster worker: it goes back with the run's state
            shipped.append((str(run_id), record.levelno, record.getMessage(), record.created))
            return
        try:
            from fluvial.store import get_recorder

            recorder = get_recorder()
            if recorder is not None:
                recorder.log(uuid.UUID(run_id), record.levelno, record.getMessage(),
                             record.created)
        except Exception:
            self.handleError(record)


def _shipping() -> list | None:
    from fluvial.logging.shipping import shipping

    return shipping()


def configure_console() -> None:
    """Once per process: send run logs to the run record, and add a console handler to
    the ``fluvial`` logger unless the application set up logging itself."""
    global _configured
    if _configured:
        return
    _configured = True
    root_logger = logging.getLogger("fluvial")
    root_logger.addHandler(StoreHandler())
    if root_logger.level == logging.NOTSET:
        root_logger.setLevel(logging.INFO)
    if logging.getLogger().handlers:
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d | %(levelname)-7s | "
                                           "%(name)s - %(message)s", "%H:%M:%S"))
    root_logger.addHandler(handler)


def _logging_print(*args: Any, sep: str | None = " ", end: str | None = "\n", file: Any = None,
                   flush: bool = False) -> None:
    logger = _print_logger.get()
    if logger is None or file not in (None, sys.stdout):
        _original_print(*args, sep=sep, end=end, file=file, flush=flush)
        return
    logger.info((" " if sep is None else sep).join(str(a) for a in args))


@contextlib.contextmanager
def print_as_log(enabled: bool | None) -> Iterator[None]:
    """Inside the block, ``print`` goes to the current run's logger when ``enabled``."""
    if not enabled:
        yield
        return
    if builtins.print is not _logging_print:
        builtins.print = _logging_print
    token = _print_logger.set(get_run_logger())
    try:
        yield
    finally:
        _print_logger.reset(token)
