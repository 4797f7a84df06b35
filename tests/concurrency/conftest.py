"""Fixtures for the slot-manager tests: a private FLUVIAL_HOME, and a client of the
session's Dask cluster (the cluster and the Ray session come from tests/conftest.py)."""

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
def dask_client(dask_cluster):
    distributed = pytest.importorskip("distributed")
    client = distributed.Client(dask_cluster, set_as_default=False)
    yield client
    client.close()


@pytest.fixture(scope="session", autouse=True)
def _ray_pickles_helpers_by_value():
    ray_cloudpickle = pytest.importorskip("ray.cloudpickle")
    ray_cloudpickle.register_pickle_by_value(slot_helpers)
