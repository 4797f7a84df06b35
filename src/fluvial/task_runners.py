"""Alias of ``fluvial.runners`` under Prefect's module name ``prefect.task_runners``."""

from fluvial.runners import *  # noqa: F403
from fluvial.runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

__all__ = ["ProcessPoolTaskRunner", "TaskRunner", "ThreadPoolTaskRunner"]
