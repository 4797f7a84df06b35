"""Runs of deployments as callers see them: ``run_deployment`` and the ``FlowRun`` it returns.

``run_deployment`` creates a ``SCHEDULED`` run for a worker (or the deployment's
``serve()`` process) to pick up, then waits for it to end (``timeout=None``:
as long as it takes; ``timeout=0``: not at all), polling the record. Called
inside a flow run with ``as_subflow=True``, the new run records the current
task run (if any) as its parent and inherits the caller's tags.
"""

from __future__ import annotations

import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fluvial.deployments import _records

__all__ = ["FlowRun", "read_flow_run", "run_deployment", "wait_for_flow_run"]

FINAL = ("COMPLETED", "FAILED", "CRASHED", "CANCELLED")


@dataclass(frozen=True)
class FlowRun:
    """A flow run as recorded: what ``run_deployment`` returns."""

    id: uuid.UUID
    name: str | None
    flow_name: str | None
    deployment_id: str | None
    parameters: dict[str, Any]
    tags: tuple[str, ...]
    state_type: str | None
    state_name: str | None
    state_message: str | None
    scheduled_start_time: float | None
    start_time: float | None
    end_time: float | None
    worker_id: str | None
    code_version: str | None
    work_pool: str | None
    attempt: int

    COLUMNS = (
        "id, name, flow_name, deployment_id, job_parameters, parameters, tags, state_type, "
        "state_name, state_message, scheduled_start_time, start_time, end_time, worker_id, "
        "code_version, work_pool, attempt"
    )

    @classmethod
    def from_row(cls, row: Iterable[Any]) -> FlowRun:
        (id_, name, flow_name, dep_id, job_params, params, tags, stype, sname, smsg, sched,
         start, end, worker, code, pool, attempt) = row
        return cls(uuid.UUID(id_), name, flow_name, dep_id,
                   json.loads(job_params or params or "{}"), tuple(json.loads(tags or "[]")),
                   stype, sname, smsg, sched, start, end, worker, code, pool, attempt or 0)

    @property
    def state(self) -> Any:
        """The latest state, as a ``State`` (no result data)."""
        from fluvial.states import State, StateType

        if self.state_type is None:
            return None
        return State(StateType(self.state_type), self.state_name or self.state_type.title(),
                     self.state_message)

    def is_final(self) -> bool:
        return self.state_type in FINAL

    def to_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["id"] = str(self.id)
        out["tags"] = list(self.tags)
        return out


def read_flow_run(run_id: str | uuid.UUID, conn: Any = None) -> FlowRun:
    with _records.connection(conn) as c:
        row = c.execute(f"SELECT {FlowRun.COLUMNS} FROM flow_runs WHERE id = ?",
                        (str(run_id),)).fetchone()
    if row is None:
        from fluvial.store import RunNotFoundError

        raise RunNotFoundError(f"no flow run {str(run_id)!r}")
    return FlowRun.from_row(row)


def wait_for_flow_run(run_id: str | uuid.UUID, timeout: float | None = None,
                      poll_interval: float = 0.2,
                      on_change: Callable[[FlowRun], None] | None = None) -> FlowRun:
    """Poll until the run is final or ``timeout`` seconds passed; the last read."""
    deadline = None if timeout is None else time.monotonic() + timeout
    seen = None
    with _records.connection() as conn:
        while True:
            run = read_flow_run(run_id, conn)
            if on_change is not None and (run.state_type, run.state_name) != seen:
                seen = (run.state_type, run.state_name)
                on_change(run)
            if run.is_final() or (deadline is not None and time.monotonic() >= deadline):
                return run
            time.sleep(poll_interval)


def _timestamp(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.astimezone()  # a naive time is local time
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    raise TypeError(f"scheduled_time must be a datetime, got {value!r}")


def run_deployment(
    name: str | uuid.UUID,
    parameters: dict[str, Any] | None = None,
    scheduled_time: dt.datetime | None = None,
    timeout: float | None = None,
    idempotency_key: str | None = None,
    as_subflow: bool = True,
    tags: Iterable[str] | None = None,
    flow_run_name: str | None = None,
    poll_interval: float = 0.2,
) -> FlowRun:
    """Create a run of deployment ``name`` (``flow/deployment`` or its id) and wait for it.

    Parameters are the deployment's, updated with ``parameters``; unknown or missing
    required parameters raise ``ParameterTypeError`` before a run is created.
    ``timeout=0`` returns the scheduled run at once; otherwise the run as it is when it
    ends or ``timeout`` seconds have passed.
    """
    from fluvial.context import _flow_run, _task_run, current_tags
    from fluvial.deployments._parameters import check_run_parameters

    dep = _records.get_deployment(str(name))
    merged = check_run_parameters(f"deployment {dep.full_name!r}", dep.parameter_schema,
                                  dep.parameters, dict(parameters or {}))
    run_tags = set(tags or ())
    parent = None
    if as_subflow and _flow_run.get() is not None:
        task_ctx = _task_run.get()
        parent = str(task_ctx.task_run.id) if task_ctx is not None else None
        run_tags |= current_tags()
    run_id, _ = _records.create_flow_run(
        dep, merged, scheduled_time=_timestamp(scheduled_time), idempotency_key=idempotency_key,
        name=flow_run_name, tags=sorted(run_tags), parent_task_run_id=parent)
    if timeout is not None and timeout <= 0:
        return read_flow_run(run_id)
    return wait_for_flow_run(run_id, timeout, poll_interval)
