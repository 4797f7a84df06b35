"""The run context and run loggers."""

from __future__ import annotations

import logging
import uuid

import pytest

import fluvial
from fluvial import disable_run_logger, flow, get_run_context, get_run_logger, task
from fluvial.context import FlowRunContext, TaskRunContext
from fluvial.exceptions import MissingContextError


def test_get_run_context_inside_a_task_gives_the_task_run():
    attempts = []

    @task(name="ctx-task", tags=["t1"], retries=1, task_run_name="ctx-{x}")
    def reads_context(x, y=2):
        ctx = get_run_context()
        assert isinstance(ctx, TaskRunContext)
        run = ctx.task_run
        attempts.append(run.run_count)
        if run.run_count == 1:
            raise ValueError("retry once")
        return (run.id, run.name, dict(run.parameters), set(run.tags), run.run_count,
                ctx.task.name, run.flow_run_id)

    @flow
    def outer():
        with fluvial.tags("t2"):
            return reads_context(5), get_run_context().flow_run.id

    (run_id, name, params, tags, run_count, task_name, flow_run_id), outer_id = outer()
    assert isinstance(run_id, uuid.UUID)
    assert name == "ctx-5"
    assert params == {"x": 5, "y": 2}
    assert tags == {"t1", "t2"}
    assert run_count == 2 and attempts == [1, 2]
    assert task_name == "ctx-task"
    assert flow_run_id == outer_id


def test_task_run_context_of_a_submitted_task_sees_resolved_parameters():
    @task
    def source():
        return 10

    @task
    def reads(value):
        return get_run_context().task_run.parameters

    @flow
    def outer():
        return reads.submit(source.submit()).result()

    params = outer()
    assert list(params) == ["value"]


def test_get_run_context_inside_a_flow_gives_the_flow_run():
    @flow(name="ctx-flow")
    def reads_context(n: int):
        ctx = get_run_context()
        assert isinstance(ctx, FlowRunContext)
        assert FlowRunContext.get() is ctx
        assert TaskRunContext.get() is None
        return ctx.flow_run.id, ctx.flow_run.name, ctx.flow.name, dict(ctx.flow_run.parameters)

    run_id, run_name, flow_name, params = reads_context("3")
    assert isinstance(run_id, uuid.UUID)
    assert isinstance(run_name, str) and run_name
    assert flow_name == "ctx-flow"
    assert params == {"n": 3}


def test_get_run_context_outside_a_run_raises_missing_context_error():
    with pytest.raises(MissingContextError) as info:
        get_run_context()
    assert isinstance(info.value, RuntimeError)
    assert FlowRunContext.get() is None
    assert TaskRunContext.get() is None


def test_context_is_cleared_after_the_run():
    @task
    def inside():
        return type(get_run_context()).__name__

    @flow
    def outer():
        return inside()

    assert outer() == "TaskRunContext"
    with pytest.raises(MissingContextError):
        get_run_context()


def test_get_run_logger_outside_a_run_raises():
    with pytest.raises(MissingContextError):
        get_run_logger()


def test_task_run_logger_records_carry_the_run_name(caplog):
    caplog.set_level(logging.INFO)

    @task(task_run_name="logging-run-{x}")
    def logs(x):
        get_run_logger().info("message from task %s", x)
        return get_run_context().task_run.id

    task_run_id = logs(7)
    records = [r for r in caplog.records if "message from task 7" in r.getMessage()]
    assert len(records) == 1
    record = records[0]
    assert record.name.startswith("fluvial")
    assert "logging-run-7" in record.getMessage()
    assert record.task_run_name == "logging-run-7"
    assert record.task_run_id == str(task_run_id)


def test_flow_run_logger_records_carry_the_run_name(caplog):
    caplog.set_level(logging.INFO)

    @flow(name="logging-flow")
    def logs():
        get_run_logger().warning("message from flow")
        return get_run_context().flow_run.name, str(get_run_context().flow_run.id)

    run_name, run_id = logs()
    records = [r for r in caplog.records if "message from flow" in r.getMessage()]
    assert len(records) == 1
    record = records[0]
    assert record.levelno == logging.WARNING
    assert record.name.startswith("fluvial")
    assert run_name in record.getMessage()
    assert record.flow_run_name == run_name
    assert record.flow_run_id == run_id


def test_run_logger_goes_through_standard_logging_handlers():
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    handler = Collect(level=logging.DEBUG)
    fluvial_logger = logging.getLogger("fluvial")
    old_level = fluvial_logger.level
    fluvial_logger.addHandler(handler)
    fluvial_logger.setLevel(logging.DEBUG)
    try:
        @task
        def logs():
            get_run_logger().debug("debug via handler")

        logs()
    finally:
        fluvial_logger.removeHandler(handler)
        fluvial_logger.setLevel(old_level)
    assert any("debug via handler" in r.getMessage() for r in seen)


def test_disable_run_logger_silences_the_run_logger(caplog):
    caplog.set_level(logging.DEBUG)

    @task
    def logs():
        get_run_logger().warning("should be silent")
        return "ran"

    with disable_run_logger():
        assert logs.fn() == "ran"  # no run context: would raise without disable_run_logger
        assert logs() == "ran"
    assert not any("should be silent" in r.getMessage() for r in caplog.records)

    assert logs() == "ran"  # enabled again after the block
    assert any("should be silent" in r.getMessage() for r in caplog.records)
