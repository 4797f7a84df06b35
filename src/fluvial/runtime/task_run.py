"""The current task run, as ``prefect.runtime.task_run``: ``id``, ``name``,
``task_name``, ``parameters``, ``tags``, ``run_count``.

Outside a task run: ``None`` (``parameters`` ``{}``, ``tags`` ``[]``, ``run_count`` 0).
``dir()`` lists the attributes.
"""

from __future__ import annotations

from typing import Any

from fluvial.context import _task_run

ATTRIBUTES = ["id", "name", "parameters", "run_count", "tags", "task_name"]

_OUTSIDE: dict[str, Any] = {"parameters": dict, "tags": list, "run_count": lambda: 0}


def __getattr__(name: str) -> Any:
    if name not in ATTRIBUTES:
        raise AttributeError(f"fluvial.runtime.task_run has no attribute {name!r}")
    ctx = _task_run.get()
    if ctx is None:
        make = _OUTSIDE.get(name)
        return make() if make is not None else None
    run = ctx.task_run
    if name == "id":
        return str(run.id)
    if name == "tags":
        return sorted(run.tags)
    return getattr(run, name)


def __dir__() -> list[str]:
    return sorted(ATTRIBUTES)
