"""What the engine tells the run record, kept off the hot path.

The flow engine opens the recorder once per flow run; every call here only appends to
the recorder's in-memory queue (a background thread writes batches). With
``FLUVIAL_STORE=off`` the recorder is ``None`` and every call is a no-op.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fluvial.runs import FlowRun, TaskRun
    from fluvial.states import State
    from fluvial.store import Recorder

__all__ = ["open_recorder", "record_flow_start", "record_flow_state", "record_task_run"]

logger = logging.getLogger("fluvial.store")

FINAL_STATE_TIMEOUT_S = 60.0  # the longest a flow call waits for its final state's commit


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
    recorder.state(flow_run.id, state.type.value, state.name, state.message, state.ts,
                   urgent=True)


def record_flow_state(recorder: Recorder | None, flow_run: FlowRun, state: State,
                      *, final: bool = False) -> None:
    """Record a flow run's state, ahead of the task-run backlog; a ``final`` one is
    committed (or kept in the spill journal) before this returns."""
    if recorder is None:
        return
    recorder.state(flow_run.id, state.type.value, state.name, state.message, state.ts,
                   urgent=True)
    if final:
        try:
            recorder.flush_urgent(FINAL_STATE_TIMEOUT_S)
        except Exception as exc:  # the run itself is done: say so, do not fail it
            logger.warning("The final state of flow run %r is not in the record yet: %s",
                           flow_run.name, exc)


def record_task_run(recorder: Recorder, task_run: TaskRun, state: State) -> None:
    """Record a settled task run in one go: its creation, when it started running (if
    known) and how it ended. Written together, the writer inserts the run with its
    final state in one row instead of updating it later."""
    task = task_run.task
    name = task_run._name
    if name is None and task.task_run_name is not None:
        try:  # a template: rendered here (the default name is the writer's)
            name = task_run.name
        except Exception:  # noqa: BLE001 - a broken template must not lose the record
            name = None
    # (``_value_``: the enum's value without the ``value`` property's Python call)
    recorder.task_run_finished(task_run.id, task_run.flow_run_id, name or task.name,
                               task.task_key, task_run.tags, state.start_ts,
                               state.type._value_, state.name, state.message, state.ts,
                               name is None)
