"""The run context: which flow run and task run the current code belongs to, and active tags.

Held in ``contextvars`` so threads and ``asyncio`` tasks each see their own run.
``get_run_context()`` returns the innermost run (task run first, then flow run).
``with_context(fn)`` carries the current run context into pools the user starts
(threads, ``multiprocessing``), picklably.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from fluvial.exceptions import MissingContextError

if TYPE_CHECKING:
    from fluvial.protocols import FlowSpec, RunnerSpec, TaskSpec, TrackerSpec
    from fluvial.runs import FlowRun, TaskRun

__all__ = [
    "FlowRunContext",
    "TaskRunContext",
    "get_run_context",
    "tags",
    "with_context",
]

T = TypeVar("T")


@dataclass
class FlowRunContext:
    """The flow run the current code is part of, with its runner."""

    flow: FlowSpec
    flow_run: FlowRun
    task_runner: RunnerSpec
    tracker: TrackerSpec

    @classmethod
    def get(cls) -> FlowRunContext | None:
        return _flow_run.get()


@dataclass
class TaskRunContext:
    """The task run the current code is part of."""

    task: TaskSpec
    task_run: TaskRun

    @property
    def parameters(self) -> dict[str, Any]:
        return self.task_run.parameters

    @classmethod
    def get(cls) -> TaskRunContext | None:
        return _task_run.get()


@dataclass(frozen=True)
class PlannedFlowRun:
    """A flow run created in the record before it starts (by a deployment): the top-level
    flow call made under it takes its id, name and tags instead of new ones."""

    id: Any  # uuid.UUID
    name: str
    tags: frozenset[str] = frozenset()
    scheduled_start_time: float | None = None
    # id, name, parameters, version of the deployment it belongs to
    deployment: dict[str, Any] | None = None

    @property
    def scheduled_start(self) -> Any:
        """``scheduled_start_time`` as an aware UTC datetime (None if not set)."""
        import datetime

        if self.scheduled_start_time is None:
            return None
        return datetime.datetime.fromtimestamp(self.scheduled_start_time, datetime.UTC)


_flow_run: ContextVar[FlowRunContext | None] = ContextVar("fluvial_flow_run", default=None)
_planned_flow_run: ContextVar[PlannedFlowRun | None] = ContextVar(
    "fluvial_planned_flow_run", default=None
)
_task_run: ContextVar[TaskRunContext | None] = ContextVar("fluvial_task_run", default=None)
_tags: ContextVar[frozenset[str]] = ContextVar("fluvial_tags", default=frozenset())


def get_run_context() -> TaskRunContext | FlowRunContext:
    """The innermost run: the current task run, else the current flow run."""
    ctx: TaskRunContext | FlowRunContext | None = _task_run.get() or _flow_run.get()
    if ctx is None:
        raise MissingContextError("get_run_context() was called outside a flow run or task run")
    return ctx


def current_tags() -> frozenset[str]:
    return _tags.get()


@contextlib.contextmanager
def tags(*names: str) -> Iterator[frozenset[str]]:
    """Add tags to every task run created inside the block."""
    for name in names:
        if not isinstance(name, str) or not name:
            raise ValueError(f"tags must be non-empty strings, got {name!r}")
    new = _tags.get() | frozenset(names)
    token = _tags.set(new)
    try:
        yield new
    finally:
        _tags.reset(token)


# -- carrying the run context into pools the user starts ---------------------------------


class _Named:
    """Stands in for a task or flow in a process that only knows the run's identity."""

    __slots__ = ("name", "version", "fn", "log_prints", "tags")

    def __init__(self, name: str, version: str | None = None) -> None:
        self.name = name
        self.version = version
        self.fn = None
        self.log_prints = None
        self.tags: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"<{self.name!r} (run context carried by with_context)>"


def _picklable(value: Any) -> Any:
    import pickle

    try:
        pickle.dumps(value)
    except Exception:
        return None
    return value


def _snapshot(flow_ctx: FlowRunContext | None, task_ctx: TaskRunContext | None,
              run_tags: frozenset[str]) -> tuple:
    """The run's identity as plain picklable data."""
    flow_part = None
    if flow_ctx is not None:
        run = flow_ctx.flow_run
        flow_part = (run.id, run.name, flow_ctx.flow.name,
                     getattr(flow_ctx.flow, "version", None),
                     _picklable(dict(run.parameters)) or {}, run.tags, run.run_count,
                     run.parent_flow_run_id, run.root_flow_run_id, run.scheduled_start_time,
                     run.lineage_id)
    task_part = None
    if task_ctx is not None:
        task_run = task_ctx.task_run
        task_part = (task_run.id, task_run.name, task_ctx.task.name, task_run.tags,
                     task_run.run_count, task_run.flow_run_id)
    return flow_part, task_part, run_tags


def _restore(snapshot: tuple) -> tuple[FlowRunContext | None, TaskRunContext | None,
                                       frozenset[str]]:
    """Contexts rebuilt from a snapshot: the identity of the runs (ids, names, tags,
    counts, flow parameters), without a runner."""
    from fluvial.runs import FlowRun, TaskRun

    flow_part, task_part, run_tags = snapshot
    flow_ctx = task_ctx = None
    if flow_part is not None:
        (run_id, name, flow_name, version, parameters, tags_, run_count, parent_id, root_id,
         scheduled, lineage) = flow_part
        flow: Any = _Named(flow_name, version)
        run = FlowRun(flow, name, parameters, tags_, None, lineage, parent_id, root_id,
                      scheduled)
        run.id, run.run_count = run_id, run_count
        flow_ctx = FlowRunContext(flow, run, None, None)  # type: ignore[arg-type]
    if task_part is not None:
        run_id, name, task_name, tags_, run_count, flow_run_id = task_part
        task: Any = _Named(task_name)
        task_run = TaskRun(task, (), {}, tags_, flow_run_id, id=run_id)
        task_run.run_count, task_run._name = run_count, name
        task_ctx = TaskRunContext(task, task_run)
    return flow_ctx, task_ctx, run_tags


class _WithContext:
    """``fn`` bound to the run context it was made in; see ``with_context``."""

    __slots__ = ("fn", "_pid", "_live", "_snapshot")

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self._pid = os.getpid()
        self._live = (_flow_run.get(), _task_run.get(), _tags.get())
        self._snapshot: tuple | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        if self._snapshot is None:
            self._snapshot = _snapshot(*self._live)
        return (_rebuilt, (self.fn, self._snapshot))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._pid == os.getpid() and self._live is not None:
            flow_ctx, task_ctx, run_tags = self._live
        else:
            assert self._snapshot is not None
            flow_ctx, task_ctx, run_tags = self._live = _restore(self._snapshot)
            self._pid = os.getpid()
        tokens = (_flow_run.set(flow_ctx), _task_run.set(task_ctx), _tags.set(run_tags))
        try:
            return self.fn(*args, **kwargs)
        finally:
            _tags.reset(tokens[2])
            _task_run.reset(tokens[1])
            _flow_run.reset(tokens[0])

    def __repr__(self) -> str:
        return f"with_context({self.fn!r})"


def _rebuilt(fn: Callable[..., Any], snapshot: tuple) -> _WithContext:
    wrapper = _WithContext.__new__(_WithContext)
    wrapper.fn = fn
    wrapper._pid = -1  # not the process it was made in: restore from the snapshot
    wrapper._live = None  # type: ignore[assignment]
    wrapper._snapshot = snapshot
    return wrapper


def with_context(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` wrapped to run with the current run context, wherever it is called.

    For pools the task or flow starts itself: ``ThreadPoolExecutor().map(with_context(fn),
    ...)`` and ``multiprocessing.Pool().map(with_context(fn), ...)`` — inside ``fn``,
    ``get_run_logger()``, ``get_run_context()``, ``fluvial.runtime`` and ``tags`` see the
    run that made the wrapper. The wrapper pickles with the standard pickler when ``fn``
    does (a module-level function). In another process the context carries the run's
    identity (ids, names, tags, counts, the flow's parameters), not its runner:
    submitting tasks there runs them as outside a flow.
    """
    if not callable(fn):
        raise TypeError(f"with_context needs a callable, got {fn!r}")
    return _WithContext(fn)
