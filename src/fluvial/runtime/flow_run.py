"""The current flow run, as ``prefect.runtime.flow_run``: ``id``, ``name``, ``flow_name``,
``flow_version``, ``parameters``, ``tags``, ``run_count``, ``scheduled_start_time``,
``parent_flow_run_id``, ``root_flow_run_id``, ``parent_deployment_id``.

Outside a run: ``None`` (``parameters`` ``{}``, ``tags`` ``[]``, ``run_count`` 0, and
``scheduled_start_time`` now, as in Prefect). Inside a task on a remote worker only
``id`` is known (from the task run). ``dir()`` lists the attributes.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable
from typing import Any

from fluvial.context import _flow_run, _task_run
from fluvial.runs import FlowRun

ATTRIBUTES = ["flow_name", "flow_version", "id", "name", "parameters", "parent_deployment_id",
           "parent_flow_run_id", "root_flow_run_id", "run_count", "scheduled_start_time", "tags"]


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


_FIELDS: dict[str, Callable[[FlowRun], Any]] = {
    "id": lambda run: str(run.id),
    "name": lambda run: run.name,
    "flow_name": lambda run: run.flow.name,
    "flow_version": lambda run: getattr(run.flow, "version", None),
    "parameters": lambda run: dict(run.parameters),
    "tags": lambda run: sorted(run.tags),
    "run_count": lambda run: run.run_count,
    "scheduled_start_time": lambda run: run.scheduled_start_time,
    "parent_flow_run_id": lambda run: _str(run.parent_flow_run_id),
    "root_flow_run_id": lambda run: _str(run.root_flow_run_id),
    "parent_deployment_id": lambda run: None,  # filled in when deployments trigger subflows
}

_OUTSIDE: dict[str, Callable[[], Any]] = {
    "parameters": dict,
    "tags": list,
    "run_count": lambda: 0,
    "scheduled_start_time": lambda: datetime.datetime.now(datetime.UTC),
}


def _outside(name: str) -> Any:
    if name in ("id", "root_flow_run_id"):  # a task on a remote worker knows its flow run
        task_ctx = _task_run.get()
        if task_ctx is not None and task_ctx.task_run.flow_run_id is not None:
            return str(task_ctx.task_run.flow_run_id)
    make = _OUTSIDE.get(name)
    return make() if make is not None else None


def __getattr__(name: str) -> Any:
    field = _FIELDS.get(name)
    if field is None:
        raise AttributeError(f"fluvial.runtime.flow_run has no attribute {name!r}")
    ctx = _flow_run.get()
    if ctx is None:
        return _outside(name)
    return field(ctx.flow_run)


def __dir__() -> list[str]:
    return sorted(ATTRIBUTES)
