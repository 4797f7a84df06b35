"""fluvial.deployments: flows stored with how and when to run them, run by workers.

    Deployment / RunnerDeployment    a flow, its entrypoint, parameters, schedules, pool, limit
    run_deployment(name, ...)        create a run of ``flow/deployment`` and wait for it
    FlowRun                          a flow run as recorded (what run_deployment returns)
    ConcurrencyLimitStrategy         ENQUEUE | CANCEL_NEW

``Flow.to_deployment``/``serve``/``deploy``/``from_source`` and ``fluvial.serve``
build on this; workers (``fluvial.workers``) run what it stores. Modules:
``_model`` (the dataclass), ``_records`` (the record's tables), ``_entrypoint``
(loading code, code versions), ``_parameters`` (schema and checks),
``_runs`` (run_deployment), ``_flow_api`` (the Flow methods), ``_project``
(``fluvial.yaml``).
"""

from __future__ import annotations

from fluvial.deployments._model import (
    ConcurrencyLimitStrategy,
    Deployment,
    DeploymentNotFound,
    RunnerDeployment,
)
from fluvial.deployments._runs import FlowRun, read_flow_run, run_deployment, wait_for_flow_run

__all__ = [
    "ConcurrencyLimitStrategy",
    "Deployment",
    "DeploymentNotFound",
    "FlowRun",
    "RunnerDeployment",
    "read_flow_run",
    "run_deployment",
    "wait_for_flow_run",
]
