"""What the engine tells the run record, kept off the hot path.

The flow engine opens the recorder once per flow run; every call here only appends to
the recorder's in-memory queue (a background thread writes batches). With
``FLUVIAL_STORE=off`` the recorder is ``None`` and every call is a no-op.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING
from uuid import UUID

if TYPE_CHECKING:
    from fluvial.runs import FlowRun, TaskRun
    from fluvial.states import State
    from fluvial.store import Recorder

__all__ = [
    "open_recorder",
    "record_flow_start",
    "record_flow_state",
    "record_task_runs",
    "record_task_state",
]

logger = logging.getLogger("fluvial.store")


def open_recorder() -> Recorder | None:
    """The process's recorder, or None when recording is off or the store is unusable."""
    from fluvial.store import StoreError, get_recorder

    try:
        return get_recorder()
    except StoreError as exc:
        logger.warning("Run record disabled for this run: %s", exc)
        return None


def record_flow_start(recorder: Recorder | None, flow_run: FlowRun, state: State) -> None:
    if recorder is None:
        return
    recorder.flow_run_created(flow_run.id, flow_run.name, flow_run.flow.name,
                              flow_run.parameters, flow_run.tags, flow_run.parent_task_run_id,
                              state.ts)
    recorder.state(flow_run.id, state.type.value, state.name, state.message, state.ts)


def record_flow_state(recorder: Recorder | None, flow_run: FlowRun, state: State) -> None:
    if recorder is not None:
        recorder.state(flow_run.id, state.type.value, state.name, state.message, state.ts)


def record_task_runs(recorder: Recorder | None, task_runs: Sequence[TaskRun], ts: float) -> None:
    """Record newly submitted task runs (PENDING at ``ts``)."""
    if recorder is None:
        return
    created = recorder.task_run_created
    for task_run in task_runs:
        task = task_run.task
        created(task_run.id, task_run.flow_run_id, task_run._name or task.name, task.task_key,
                task_run.tags, ts)


def record_task_state(recorder: Recorder, task_run_id: UUID, state: State) -> None:
    """Record a settled run: when it started running (if known) and how it ended."""
    if state.start_ts is not None:
        recorder.state(task_run_id, "RUNNING", "Running", None, state.start_ts)
    recorder.state(task_run_id, state.type.value, state.name, state.message, state.ts)
