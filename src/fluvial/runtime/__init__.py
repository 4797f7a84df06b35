"""``fluvial.runtime.flow_run``, ``fluvial.runtime.task_run`` and
``fluvial.runtime.deployment``: facts about the current runs as module attributes
(``flow_run.id``, ``task_run.name``, ``deployment.parameters`` ...), as in
``prefect.runtime``. Outside a run the attributes are ``None`` (or empty)."""

from fluvial.runtime import deployment, flow_run, task_run

__all__ = ["deployment", "flow_run", "task_run"]
