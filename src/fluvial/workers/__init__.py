"""fluvial.workers: processes that run deployments' flow runs.

    Worker(pool, limit=..., ...)      claim due runs of a pool, each in its own process
    serve(*deployments, limit=...)    store deployments, then run their runs in this process

Modules: ``_claim`` (atomic claims), ``_reaper`` (lapsed workers, cancelled runs),
``_flow_process`` (one run in a subprocess), ``_worker`` (the poll loop),
``_serve`` (``serve()``), ``_cancel`` (cancelling a run).
"""

from __future__ import annotations

from fluvial.workers._serve import serve
from fluvial.workers._worker import Worker

__all__ = ["Worker", "serve"]
