"""DaskTaskRunner specifics: clusters it starts or joins, adaptive scaling, clients in tasks."""

from __future__ import annotations

import pytest

from fluvial import flow, task
from fluvial.exceptions import RunnerError
from fluvial.runners.dask import DaskTaskRunner, get_dask_client

distributed = pytest.importorskip("distributed")


@task
def square(x: int) -> int:
    return x * x


def test_joining_a_cluster_by_address_leaves_it_running(dask_cluster):
    runner = DaskTaskRunner(address=dask_cluster.scheduler_address)

    @flow(task_runner=runner)
    def squares():
        return square.map(range(4)).result()

    assert squares() == [0, 1, 4, 9]
    assert not runner.started
    with distributed.Client(dask_cluster.scheduler_address) as client:  # still up
        assert client.submit(sum, [1, 2]).result() == 3


def test_starts_and_closes_its_own_adaptive_cluster_by_import_path():
    runner = DaskTaskRunner(
        cluster_class="distributed.LocalCluster",
        cluster_kwargs={"n_workers": 0, "processes": False, "threads_per_worker": 1},
        adapt_kwargs={"minimum": 1, "maximum": 2},
    )

    @flow(task_runner=runner)
    def squares():
        client = runner.client
        result = square.map(range(6)).result()
        return result, client.scheduler_info()["address"]

    result, address = squares()
    assert result == [0, 1, 4, 9, 16, 25]
    with pytest.raises(OSError):  # the cluster was closed with the flow
        distributed.Client(address, timeout=1)


def test_get_dask_client_inside_a_task(dask_cluster):
    @task
    def uses_dask(n: int) -> int:
        with get_dask_client() as client:
            return sum(client.gather(client.map(lambda x: x + 1, range(n))))

    @flow(task_runner=DaskTaskRunner(address=dask_cluster.scheduler_address))
    def nested():
        return uses_dask.submit(10).result()

    assert nested() == 55


def test_subflow_shares_the_parent_cluster(dask_cluster):
    runner = DaskTaskRunner(address=dask_cluster.scheduler_address)

    @flow(task_runner=runner)
    def child() -> int:
        return square.submit(5).result()

    @flow(task_runner=runner)
    def parent() -> tuple[int, int]:
        return child(), square.submit(3).result()

    assert parent() == (25, 9)


def test_unreachable_address_is_a_clear_error():
    runner = DaskTaskRunner(address="tcp://127.0.0.1:1", client_kwargs={"timeout": 1})
    with pytest.raises(RunnerError, match="127.0.0.1:1"):
        runner.start()


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"address": 8786}, TypeError),
        ({"address": "tcp://x:1", "cluster_class": "distributed.LocalCluster"}, ValueError),
        ({"cluster_kwargs": [1]}, TypeError),
    ],
)
def test_invalid_options(kwargs, error):
    with pytest.raises(error):
        DaskTaskRunner(**kwargs)


def test_bad_cluster_class_path():
    runner = DaskTaskRunner(cluster_class="no_such_module.Cluster")
    with pytest.raises(ValueError, match="no_such_module"):
        runner.start()
