"""The current flow run: ``id``, ``name``, ``flow_name``, ``parameters``, ``tags``,
``run_count``; inside a task on a remote worker only
``id`` is known (from the task run)."""

from __future__ import annotations

from typing import Any

from fluvial.context import _flow_run, _task_run

_ATTRIBUTES = ["flow_name", "id", "name", "parameters", "run_count", "tags"]


def _get(name: str) -> Any:
    ctx = _flow_run.get()
    if ctx is None:
        if name == "id":
            task_ctx = _task_run.get()
            return str(task_ctx.task_run.flow_run_id) if task_ctx and \
                task_ctx.task_run.flow_run_id else None
        return {} if name == "parameters" else [] if name == "tags" else None
    run = ctx.flow_run
    values = {
        "id": str(run.id),
        "name": run.name,
        "flow_name": run.flow.name,
        "parameters": dict(run.parameters),
        "tags": sorted(run.tags),
        "run_count": run.run_count,
    }
    return values[name]


def __getattr__(name: str) -> Any:
    if name in _ATTRIBUTES:
        return _get(name)
    raise AttributeError(f"fluvial.runtime.flow_run has no attribute {name!r}")
