"""``fluvial.runtime.flow_run`` and ``fluvial.runtime.task_run``: facts about the current
runs as module attributes (``flow_run.id``, ``task_run.name``, ``task_run.parameters``
...), as in ``prefect.runtime``. Outside a run the attributes are ``None`` (or empty)."""

from fluvial.runtime import flow_run, task_run

__all__ = ["flow_run", "task_run"]
