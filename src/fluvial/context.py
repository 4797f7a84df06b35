"""The run context: which flow run and task run the current code belongs to, and active tags.

Held in ``contextvars`` so threads and ``asyncio`` tasks each see their own run.
``get_run_context()`` returns the innermost run (task run first, then flow run).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fluvial.exceptions import MissingContextError

if TYPE_CHECKING:
    from fluvial.flows import Flow
    from fluvial.orchestration.tracking import RunTracker
    from fluvial.runners.base import TaskRunner
    from fluvial.runs import FlowRun, TaskRun
    from fluvial.tasks import Task

__all__ = [
    "FlowRunContext",
    "TaskRunContext",
    "get_run_context",
    "tags",
]


@dataclass
class FlowRunContext:
    """The flow run the current code is part of, with its runner."""

    flow: Flow
    flow_run: FlowRun
    task_runner: TaskRunner
    tracker: RunTracker

    @classmethod
    def get(cls) -> FlowRunContext | None:
        return _flow_run.get()


@dataclass
class TaskRunContext:
    """The task run the current code is part of."""

    task: Task
    task_run: TaskRun

    @property
    def parameters(self) -> dict[str, Any]:
        return self.task_run.parameters

    @classmethod
    def get(cls) -> TaskRunContext | None:
        return _task_run.get()


_flow_run: ContextVar[FlowRunContext | None] = ContextVar("fluvial_flow_run", default=None)
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
