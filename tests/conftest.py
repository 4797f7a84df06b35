"""Shared fixtures: a throwaway FLUVIAL_HOME per test, and one started runner of each
kind per session — a real Dask LocalCluster (worker processes) and a real local Ray
session — so the behaviour suite runs over every runner without paying start-up per
test. Clusters are closed at session end."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fluvial.runners import ProcessPoolTaskRunner, TaskRunner, ThreadPoolTaskRunner

# leakcheck: no child process or thread a test started outlives it; stores: the
# ``backend`` fixture (SQLite and PostgreSQL) and the session's PostgreSQL server
pytest_plugins = ["leakcheck", "stores"]

RUNNER_KINDS = ["threads", "processes", "dask", "ray"]


@pytest.fixture(autouse=True)
def fluvial_home(tmp_path_factory: pytest.TempPathFactory,
                 monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    home = str(tmp_path_factory.mktemp("fluvial_home"))
    monkeypatch.setenv("FLUVIAL_HOME", home)
    monkeypatch.setenv("FLUVIAL_PROGRESS", "off")
    yield home


@pytest.fixture(scope="session")
def dask_cluster() -> Iterator[object]:
    import leakcheck

    distributed = pytest.importorskip("distributed")
    before = set(leakcheck.snapshot_new_children(set()))
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=2, processes=True,
                                       host="127.0.0.1", dashboard_address="127.0.0.1:0")
    leakcheck.session_roots.update(leakcheck.snapshot_new_children(before))
    # a nanny runs in this process and restarts a dead worker as a new child of ours
    leakcheck.session_sources.append(lambda: _dask_worker_pids(cluster))
    yield cluster
    _shutdown_started("dask")
    cluster.close()


def _dask_worker_pids(cluster: object) -> list[int]:
    pids = []
    for nanny in list(getattr(cluster, "workers", {}).values()):
        process = getattr(getattr(nanny, "process", None), "process", None)
        pid = getattr(process, "pid", None)
        if pid is not None:
            pids.append(pid)
    return pids


@pytest.fixture(scope="session")
def ray_session() -> Iterator[object]:
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    # Ray workers import test modules by name (cloudpickle pickles importable code by
    # reference), so they need the test directories pytest put on sys.path.
    paths = [p for p in sys.path if p.startswith(str(Path(__file__).parent))]
    env = {"PYTHONPATH": os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])}
    import leakcheck
    from fluvial.runners._ray_local import init_ray

    before = set(leakcheck.snapshot_new_children(set()))

    # As RayTaskRunner() starts it: every server of the session on 127.0.0.1 only.
    init_ray(ray, None, dict(runtime_env={"env_vars": env}, num_cpus=4, include_dashboard=False,
                             logging_level=logging.WARNING, log_to_driver=True))
    leakcheck.session_roots.update(leakcheck.snapshot_new_children(before))
    yield ray
    _shutdown_started("ray")
    ray.shutdown()


def _make_runner(kind: str, request: pytest.FixtureRequest) -> TaskRunner:
    if kind == "threads":
        return ThreadPoolTaskRunner(max_workers=4)
    if kind == "processes":
        return ProcessPoolTaskRunner(max_workers=4)
    if kind == "dask":
        from fluvial.runners.dask import DaskTaskRunner

        cluster = request.getfixturevalue("dask_cluster")
        return DaskTaskRunner(address=cluster.scheduler_address)  # type: ignore[attr-defined]
    if kind == "ray":
        from fluvial.runners.ray import RayTaskRunner

        request.getfixturevalue("ray_session")
        return RayTaskRunner()
    raise ValueError(kind)


_started: dict[str, TaskRunner] = {}


def _shutdown_started(kind: str) -> None:
    """Close a session runner before the cluster it talks to goes away."""
    runner = _started.pop(kind, None)
    if runner is not None:
        runner.shutdown()


def _session_workers() -> list[int]:
    runner = _started.get("processes")
    return runner.worker_pids() if isinstance(runner, ProcessPoolTaskRunner) else []


def _session_dask_clients() -> list[str]:
    """The session Dask runner's client id: its limits watch thread is named after it."""
    runner = _started.get("dask")
    client = getattr(runner, "_client", None) if runner is not None else None
    return [client.id] if client is not None else []


@pytest.fixture(scope="session")
def started_runners() -> Iterator[dict[str, TaskRunner]]:
    import leakcheck

    leakcheck.session_sources.append(_session_workers)
    leakcheck.session_thread_marks.append(
        lambda: [r.thread_tag for r in _started.values() if isinstance(r, ProcessPoolTaskRunner)])
    leakcheck.session_thread_marks.append(_session_dask_clients)
    yield _started
    for runner in _started.values():
        runner.shutdown()


@pytest.fixture
def session_runner(request: pytest.FixtureRequest,
                   started_runners: dict[str, TaskRunner]) -> Callable[[str], TaskRunner]:
    """The started runner of a kind, shared by the session (flows use it as it is)."""

    def get(kind: str) -> TaskRunner:
        runner = started_runners.get(kind)
        if runner is None or not runner.started:
            runner = started_runners[kind] = _make_runner(kind, request)
            runner.start()
        return runner

    return get


@pytest.fixture(params=RUNNER_KINDS)
def runner(request: pytest.FixtureRequest, session_runner: Callable[[str], TaskRunner]) -> TaskRunner:
    """A started runner of each kind: the behaviour suite runs once per runner."""
    return session_runner(request.param)


@pytest.fixture
def make_runner(request: pytest.FixtureRequest) -> Callable[[str], TaskRunner]:
    """A fresh, unstarted runner of a kind (for tests of start/stop and crashes)."""
    return lambda kind: _make_runner(kind, request)
