"""The current task run: ``id``, ``name``, ``task_name``, ``parameters``, ``tags``,
``run_count``."""

from __future__ import annotations

from typing import Any

from fluvial.context import _task_run

_ATTRIBUTES = ["id", "name", "parameters", "run_count", "tags", "task_name"]


def __getattr__(name: str) -> Any:
    if name not in _ATTRIBUTES:
        raise AttributeError(f"fluvial.runtime.task_run has no attribute {name!r}")
    ctx = _task_run.get()
    if ctx is None:
        return {} if name == "parameters" else [] if name == "tags" else None
    run = ctx.task_run
    if name == "id":
        return str(run.id)
    if name == "tags":
        return sorted(run.tags)
    return getattr(run, name)
