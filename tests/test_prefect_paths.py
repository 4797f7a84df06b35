"""Import paths Prefect users write (issue 9, items 8, 11, 15): ``fluvial.logging.loggers``,
``fluvial.client.schemas.objects``, ``fluvial.runtime.deployment``,
``fluvial.utilities.annotations``; ``Task``/``Flow`` generic in two parameters;
the attributes of ``fluvial.runtime.flow_run``."""

from __future__ import annotations

import datetime
import importlib
import logging
import subprocess
import sys
import uuid
from typing import Any

import pytest

from fluvial import Flow, Task, flow, task
from fluvial.runtime import deployment
from fluvial.runtime import flow_run as rt_flow_run
from fluvial.runtime import task_run as rt_task_run

# -- Task[P, R] / Flow[P, R] -------------------------------------------------------------


def test_task_and_flow_are_generic_in_parameters_and_return_type():
    annotated_task: Task[Any, Any] = Task(lambda: 1)
    annotated_flow: Flow[Any, Any] = Flow(lambda: 1)
    assert Task[[int, str], float] is not None and Flow[..., int] is not None
    assert annotated_task.fn() == 1 and annotated_flow.fn() == 1
    assert len(Task.__parameters__) == 2 and len(Flow.__parameters__) == 2


def test_module_level_generic_annotations_import(tmp_path):
    module = tmp_path / "annotated_module.py"
    module.write_text(
        "from typing import Any\n"
        "from fluvial import Flow, Task, flow, task\n"
        "my_task: Task[Any, Any]\n"
        "my_flow: Flow[Any, Any]\n"
        "@task\n"
        "def add(x: int, y: int) -> int:\n"
        "    return x + y\n"
        "typed: Task[[int, int], int] = add\n"
        "print(typed(1, 2))\n"
    )
    out = subprocess.run([sys.executable, str(module)], capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.strip().splitlines()[-1] == "3"


# -- import paths -------------------------------------------------------------------


@pytest.mark.parametrize(("module", "names"), [
    ("fluvial.logging.loggers", ["flow_run_logger", "task_run_logger", "get_run_logger",
                                 "get_logger", "disable_run_logger", "PrefectLogAdapter"]),
    ("fluvial.client.schemas.objects", ["FlowRun", "TaskRun", "State", "StateType"]),
    ("fluvial.client.schemas", ["FlowRun", "TaskRun", "State"]),
    ("fluvial.runtime.deployment", ["id", "name", "parameters", "version", "flow_run_id"]),
    ("fluvial.utilities.annotations", ["unmapped", "quote", "opaque"]),
])
def test_prefect_import_paths(module, names):
    mod = importlib.import_module(module)
    for name in names:
        assert name in dir(mod) or hasattr(mod, name), f"{module}.{name}"
    for name in getattr(mod, "__all__", ()):
        hasattr(mod, name)  # resolves without raising


def test_reexports_are_the_same_objects():
    import fluvial.annotations
    import fluvial.utilities.annotations
    from fluvial.client.schemas.objects import FlowRun, State, TaskRun
    from fluvial.logging import get_run_logger
    from fluvial.logging.loggers import get_run_logger as via_loggers

    assert via_loggers is get_run_logger
    for name in fluvial.annotations.__all__:
        assert getattr(fluvial.utilities.annotations, name) is getattr(fluvial.annotations, name)
    assert FlowRun is importlib.import_module("fluvial.runs").FlowRun
    assert TaskRun is importlib.import_module("fluvial.runs").TaskRun
    assert State is importlib.import_module("fluvial.states").State


def test_hooks_typed_with_client_schemas_receive_those_objects():
    from fluvial.client.schemas.objects import FlowRun, State, TaskRun

    seen: list[tuple[type, type]] = []

    def on_task_done(tsk: Task, run: TaskRun, state: State) -> None:
        seen.append((type(run), type(state)))

    def on_flow_done(flw: Flow, run: FlowRun, state: State) -> None:
        seen.append((type(run), type(state)))

    @task(on_completion=[on_task_done])
    def one() -> int:
        return 1

    @flow(on_completion=[on_flow_done])
    def hooked() -> int:
        return one()

    assert hooked() == 1
    assert seen == [(TaskRun, State), (FlowRun, State)]


def test_flow_run_logger_and_task_run_logger(caplog):
    from fluvial.logging.loggers import flow_run_logger, task_run_logger
    from fluvial.runtime import flow_run as current

    @task(task_run_name="t-{x}")
    def logs(x: int) -> None:
        from fluvial.context import get_run_context

        run = get_run_context().task_run
        task_run_logger(run, task=logs).info("from task %d", x)

    @flow(name="logged")
    def logged() -> str:
        from fluvial.context import FlowRunContext

        ctx = FlowRunContext.get()
        assert ctx is not None
        flow_run_logger(ctx.flow_run, ctx.flow).warning("from flow")
        logs(7)
        return current.id

    with caplog.at_level(logging.INFO, logger="fluvial"):
        run_id = logged()
    by_message = {r.getMessage(): r for r in caplog.records}
    flow_record = by_message[next(m for m in by_message if m.endswith("from flow"))]
    assert flow_record.flow_run_id == run_id and flow_record.flow_name == "logged"
    task_record = by_message[next(m for m in by_message if m.endswith("from task 7"))]
    assert task_record.task_run_name == "t-7" and task_record.flow_run_id == run_id
    assert task_record.flow_name == "logged" and task_record.task_name == "logs"


# -- runtime.flow_run / task_run / deployment ----------------------------------------


def test_runtime_outside_a_run():
    assert rt_flow_run.id is None and rt_flow_run.name is None
    assert rt_flow_run.run_count == 0 and rt_task_run.run_count == 0
    assert rt_flow_run.parameters == {} and rt_flow_run.tags == []
    assert rt_flow_run.parent_flow_run_id is None and rt_flow_run.root_flow_run_id is None
    now = datetime.datetime.now(datetime.UTC)
    assert abs((rt_flow_run.scheduled_start_time - now).total_seconds()) < 5
    assert deployment.id is None and deployment.name is None and deployment.version is None
    assert deployment.parameters == {} and deployment.flow_run_id is None


def test_runtime_flow_run_lists_its_attributes():
    names = set(dir(rt_flow_run))
    assert {"id", "name", "flow_name", "parameters", "tags", "run_count",
            "scheduled_start_time", "parent_flow_run_id", "root_flow_run_id"} <= names
    for name in dir(rt_flow_run):
        getattr(rt_flow_run, name)
    assert {"id", "name", "task_name", "parameters", "tags", "run_count"} <= set(dir(rt_task_run))
    assert {"id", "name", "parameters", "version"} <= set(dir(deployment))
    with pytest.raises(AttributeError, match="nope"):
        rt_flow_run.nope  # noqa: B018


def test_runtime_flow_run_inside_flows_and_subflows():
    @flow(retries=1)
    def child() -> dict[str, Any]:
        return {"id": rt_flow_run.id, "parent": rt_flow_run.parent_flow_run_id,
                "root": rt_flow_run.root_flow_run_id, "run_count": rt_flow_run.run_count,
                "scheduled": rt_flow_run.scheduled_start_time}

    @flow
    def grandchild_parent() -> dict[str, Any]:
        return {"id": rt_flow_run.id, "child": child()}

    attempts = []

    @flow(retries=1)
    def parent() -> dict[str, Any]:
        attempts.append(rt_flow_run.run_count)
        if len(attempts) == 1:
            raise ValueError("first attempt fails")
        return {"id": rt_flow_run.id, "parent": rt_flow_run.parent_flow_run_id,
                "root": rt_flow_run.root_flow_run_id, "nested": grandchild_parent()}

    out = parent()
    assert attempts == [1, 2]
    assert out["parent"] is None and out["root"] == out["id"]
    middle = out["nested"]
    inner = middle["child"]
    assert uuid.UUID(inner["id"]) and inner["id"] not in (out["id"], middle["id"])
    assert inner["parent"] == middle["id"] and inner["root"] == out["id"]
    assert inner["run_count"] == 1
    assert isinstance(inner["scheduled"], datetime.datetime)
    assert inner["scheduled"].tzinfo is not None


@task
def runtime_facts() -> tuple[Any, ...]:
    return (rt_flow_run.id, rt_task_run.run_count, rt_task_run.name,
            sorted(dir(rt_flow_run)) == sorted(rt_flow_run.ATTRIBUTES))


def test_runtime_inside_tasks_on_every_runner(runner):
    @flow(task_runner=runner)
    def facts_flow() -> tuple[Any, Any]:
        return rt_flow_run.id, runtime_facts.submit().result()

    flow_id, (seen_flow_id, run_count, name, lists) = facts_flow()
    assert seen_flow_id == flow_id
    assert run_count == 1 and name.startswith("runtime_facts") and lists


def test_runtime_deployment_inside_a_deployment_run():
    from fluvial.runtime.deployment import DeploymentInfo, running_deployment

    @flow
    def deployed() -> tuple[Any, ...]:
        return (deployment.id, deployment.name, deployment.version, deployment.parameters,
                deployment.flow_run_id == rt_flow_run.id)

    info = DeploymentInfo(id="d-1", name="nightly", version="7", parameters={"n": 3})
    with running_deployment(info):
        assert deployed() == ("d-1", "nightly", "7", {"n": 3}, True)
    assert deployment.id is None
