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
