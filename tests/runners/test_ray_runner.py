"""RayTaskRunner specifics: resources per task, joining a session, bad addresses."""

from __future__ import annotations

import pytest

from fluvial import flow, task
from fluvial.runners.ray import RayTaskRunner, remote_options

ray = pytest.importorskip("ray")


@task
def resources_seen() -> float:
    import ray

    return ray.get_runtime_context().get_assigned_resources().get("CPU", 0.0)


def test_remote_options_set_resources(ray_session):
    @flow(task_runner=RayTaskRunner())
    def with_resources():
        default = resources_seen.submit()
        with remote_options(num_cpus=2):
            bigger = resources_seen.submit()
        return default.result(), bigger.result()

    assert with_resources() == (1.0, 2.0)


def test_reuses_the_running_session_and_leaves_it_up(ray_session):
    @flow(task_runner=RayTaskRunner())
    def tiny():
        return resources_seen.submit().result()

    assert tiny() == 1.0
    assert ray.is_initialized()


@pytest.mark.parametrize(("kwargs", "error"), [({"address": 1}, TypeError),
                                               ({"init_kwargs": "x"}, TypeError)])
def test_invalid_options(kwargs, error):
    with pytest.raises(error):
        RayTaskRunner(**kwargs)


# -- bugs found by Prefect's prefect-ray tests (issue 9, item 17) ------------------------


@task
def plus_one(x: int) -> int:
    return x + 1


def test_max_calls_with_submit_finishes(ray_session):
    """``@ray.remote(max_calls=1)`` as a remote option: Ray refuses it in ``.options()``;
    the runner sets it on the remote function instead, and the flow ends."""

    @flow(task_runner=RayTaskRunner())
    def with_max_calls() -> int:
        with remote_options(max_calls=1):
            future = plus_one.submit(42)
        return future.result()

    assert with_max_calls() == 43


def test_an_invalid_remote_option_fails_the_submit_without_hanging(ray_session):
    @flow(task_runner=RayTaskRunner())
    def bad_option() -> None:
        with remote_options(no_such_option=1):
            plus_one.submit(1)

    with pytest.raises(ValueError, match="no_such_option"):
        bad_option()


@task
def exit_worker() -> int:
    import os

    os._exit(3)


def test_a_downstream_of_a_crashed_run_names_the_crash(ray_session):
    @flow(task_runner=RayTaskRunner())
    def crashing() -> tuple[str, str, str]:
        upstream = exit_worker.submit()
        downstream = plus_one.submit(upstream)
        downstream.wait()
        return upstream.state.name, downstream.state.name, downstream.state.message

    up, down, message = crashing(return_state=True).result(raise_on_failure=False)
    assert up == "Crashed" and down == "NotReady"
    assert "exit_worker" in message and "Crashed" in message
    assert "crashed on RayTaskRunner" in message  # the crash itself, not just its name


def test_tasks_referring_to_classes_of_an_unimportable_module_run(ray_session, tmp_path,
                                                                   monkeypatch):
    """The calling module is importable in the driver only (its directory is on the
    driver's sys.path, not the workers'): its functions and classes travel by value."""
    import importlib
    import sys

    module_dir = tmp_path / "user_code"
    module_dir.mkdir()
    (module_dir / "pe_user_pipeline.py").write_text(
        "from fluvial import flow, task\n"
        "class Point:\n"
        "    def __init__(self, x):\n"
        "        self.x = x\n"
        "@task\n"
        "def move(p):\n"
        "    return Point(p.x + 1)\n"
        "def build(runner):\n"
        "    @task\n"
        "    def make(x):\n"
        "        return Point(x)\n"
        "    @flow(task_runner=runner)\n"
        "    def pipeline(x: int) -> int:\n"
        "        return move.submit(make.submit(x)).result().x\n"
        "    return pipeline\n"
    )
    monkeypatch.syspath_prepend(str(module_dir))
    module = importlib.import_module("pe_user_pipeline")
    try:
        assert module.build(RayTaskRunner())(1) == 2
    finally:
        sys.modules.pop("pe_user_pipeline", None)


def test_by_value_falls_back_to_by_reference_when_it_cannot_pickle(tmp_path, monkeypatch):
    import importlib
    import sys

    import cloudpickle

    from fluvial.runners._by_value import ship_by_value

    (tmp_path / "pe_locked_module.py").write_text(
        "import threading\n"
        "LOCK = threading.Lock()\n"
        "def guarded():\n"
        "    with LOCK:\n"
        "        return 1\n"
        "class Shape:\n"
        "    pass\n"
        "def shaped():\n"
        "    return Shape()\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module("pe_locked_module")
    try:
        ship_by_value(module.guarded)  # its global lock cannot travel by value
        assert b"_make_function" not in cloudpickle.dumps(module.guarded)  # by reference
        ship_by_value(module.shaped)
        assert b"_make_skeleton_class" in cloudpickle.dumps(module.Shape)  # by value
    finally:
        cloudpickle.unregister_pickle_by_value(module)
        sys.modules.pop("pe_locked_module", None)
