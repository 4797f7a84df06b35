"""The deployment of the current flow run, as ``prefect.runtime.deployment``: ``id``,
``name``, ``version``, ``parameters``, ``flow_run_id``.

Outside a deployment run every attribute is ``None`` except ``parameters``, which is
``{}`` (as in Prefect, so ``deployment.parameters.get(...)`` works anywhere).

Whatever starts a flow run for a deployment (a worker, ``serve()``) announces it with
``with running_deployment(DeploymentInfo(...)):`` around the flow call; the values are
seen in that thread and in the flow's own thread (a context variable).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from fluvial.context import _flow_run

ATTRIBUTES = ["flow_run_id", "id", "name", "parameters", "version"]


@dataclass(frozen=True)
class DeploymentInfo:
    """What a flow run knows about the deployment that started it."""

    id: str
    name: str
    version: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


_current: ContextVar[DeploymentInfo | None] = ContextVar("fluvial_deployment", default=None)


@contextlib.contextmanager
def running_deployment(info: DeploymentInfo) -> Iterator[DeploymentInfo]:
    """Flow runs started inside the block belong to deployment ``info``."""
    token = _current.set(info)
    try:
        yield info
    finally:
        _current.reset(token)


def __getattr__(name: str) -> Any:
    if name not in ATTRIBUTES:
        raise AttributeError(f"fluvial.runtime.deployment has no attribute {name!r}")
    info = _current.get()
    if info is None:
        return {} if name == "parameters" else None
    if name == "flow_run_id":
        ctx = _flow_run.get()
        return str(ctx.flow_run.id) if ctx is not None else None
    if name == "parameters":
        return dict(info.parameters)
    return getattr(info, name)


def __dir__() -> list[str]:
    return sorted(ATTRIBUTES)
