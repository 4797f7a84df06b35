"""Fixtures for the slot-manager tests: a private FLUVIAL_HOME, a shared Dask cluster and Ray."""

from __future__ import annotations

from pathlib import Path

import cloudpickle
import pytest
import slot_helpers

cloudpickle.register_pickle_by_value(slot_helpers)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    h = tmp_path / "home"
    h.mkdir()
    monkeypatch.setenv("FLUVIAL_HOME", str(h))
    return h


@pytest.fixture(scope="session")
def dask_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="session")
def ray_session():
    ray = pytest.importorskip("ray")
    pytest.importorskip("ray.cloudpickle").register_pickle_by_value(slot_helpers)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
