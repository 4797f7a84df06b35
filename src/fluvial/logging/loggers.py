"""``prefect.logging.loggers``'s import path: the run loggers of ``fluvial.logging``."""

from fluvial.logging import (
    RunLogger,
    disable_run_logger,
    flow_run_logger,
    get_logger,
    get_run_logger,
    print_as_log,
    task_run_logger,
)

PrefectLogAdapter = RunLogger

__all__ = ["PrefectLogAdapter", "RunLogger", "disable_run_logger", "flow_run_logger",
           "get_logger", "get_run_logger", "print_as_log", "task_run_logger"]
