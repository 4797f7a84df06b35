"""Task runners: where task runs execute.

``ThreadPoolTaskRunner`` (the default) and ``ProcessPoolTaskRunner`` live here;
``fluvial.runners.dask.DaskTaskRunner`` and ``fluvial.runners.ray.RayTaskRunner``
are imported from their own modules so ``import fluvial`` never loads Dask or Ray.
"""

from typing import Any

from fluvial.runners.base import TaskRunner
from fluvial.runners.threads import ThreadPoolTaskRunner

__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]


def __getattr__(name: str) -> Any:
    if name == "ProcessPoolTaskRunner":
        from fluvial.runners.processes import ProcessPoolTaskRunner

        return ProcessPoolTaskRunner
    raise AttributeError(f"module 'fluvial.runners' has no attribute {name!r}")
