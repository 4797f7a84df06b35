"""``prefect.client.schemas.objects``: ``FlowRun``, ``TaskRun`` and ``State`` — the
objects a hook receives (``def on_failure(flow, flow_run: FlowRun, state: State)``)."""

from fluvial.runs import FlowRun, TaskRun
from fluvial.states import State, StateType

__all__ = ["FlowRun", "State", "StateType", "TaskRun"]
