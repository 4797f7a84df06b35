"""``prefect.client.schemas``: the run records and states, for type hints in hooks."""

from fluvial.client.schemas.objects import FlowRun, State, StateType, TaskRun

__all__ = ["FlowRun", "State", "StateType", "TaskRun"]
