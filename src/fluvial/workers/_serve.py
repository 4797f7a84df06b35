"""``fluvial.serve(*deployments, limit=...)`` and ``Flow.serve``: a worker for some deployments.

The deployments are stored (with no work pool: only their ``serve()`` process
runs them), then a :class:`~fluvial.workers.Worker` scoped to their ids polls,
schedules and runs their runs here until SIGTERM/SIGINT. With
``pause_on_shutdown=True`` their schedules are paused when it stops.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["serve"]

logger = logging.getLogger("fluvial.worker")


def serve(*deployments: Any, limit: int | None = None, pause_on_shutdown: bool = False,
          **worker_options: Any) -> None:
    """Store ``deployments`` and run their runs in this process until stopped."""
    from fluvial.deployments import Deployment
    from fluvial.deployments._records import set_paused
    from fluvial.workers._worker import Worker

    if not deployments:
        raise ValueError("serve() needs at least one deployment (flow.to_deployment(...))")
    for dep in deployments:
        if not isinstance(dep, Deployment):
            raise TypeError(f"serve() takes deployments from flow.to_deployment(), got {dep!r}")
        dep.work_pool = None
        dep.apply()
    names = ", ".join(repr(d.full_name) for d in deployments)
    print(f"Serving {names}. Run one with: fluvial deployment run {deployments[0].full_name!r}"
          "\nStop with Ctrl-C.", flush=True)
    worker = Worker(None, limit=limit, deployment_ids=[d.id for d in deployments],
                    name=f"serve-{deployments[0].full_name}", **worker_options)
    try:
        worker.start()
    finally:
        if pause_on_shutdown:
            for dep in deployments:
                set_paused(dep.full_name, True)
