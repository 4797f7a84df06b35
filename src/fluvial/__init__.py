"""fluvial: plain Python functions as tasks and flows, run on threads, processes, Dask or Ray.

The public API, re-exported from the modules that own it. ``from prefect import flow,
task`` becomes ``from fluvial import flow, task``.
"""

from typing import Any

from fluvial.annotations import allow_failure, opaque, quote, unmapped
from fluvial.context import get_run_context, tags
from fluvial.flows import Flow, flow
from fluvial.futures import Future, FutureList, PrefectFuture, as_completed, wait
from fluvial.logging import disable_run_logger, get_run_logger
from fluvial.states import State, StateType
from fluvial.tasks import Task, task

__version__ = "0.1.0"

__all__ = [
    "Flow",
    "Future",
    "FutureList",
    "PrefectFuture",
    "State",
    "StateType",
    "Task",
    "allow_failure",
    "as_completed",
    "concurrency",
    "disable_run_logger",
    "flow",
    "get_run_context",
    "get_run_logger",
    "opaque",
    "quote",
    "serve",
    "tags",
    "task",
    "unmapped",
    "wait",
]


def __getattr__(name: str) -> Any:
    # ``fluvial.concurrency`` is the limits package, as ``prefect.concurrency`` is;
    # imported on first use so ``import fluvial`` stays light
    if name == "concurrency":
        import importlib

        return importlib.import_module("fluvial.concurrency")
    if name == "serve":  # the platform layer, imported on first use
        from fluvial.workers import serve

        return serve
    raise AttributeError(f"module 'fluvial' has no attribute {name!r}")
