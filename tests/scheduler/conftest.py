"""Fixtures for the scheduler: a fresh store per test, deployments made with plain SQL.

A test that asks for ``backend`` runs on SQLite and on PostgreSQL (the real
throwaway server of ``tests/store/pg_server.py``, started once per session; where
none can be had the PostgreSQL variants skip, saying why). ``conn`` is an opened
(migrated) connection to the test's store; ``add_deployment`` writes a deployment
and its schedules the way the deployments API stores them.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent.parent / "store"))
sys.path.insert(0, str(Path(__file__).parent))

from scheduler_helpers import AddDeployment, insert_deployment  # noqa: E402

import fluvial.store as store  # noqa: E402


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FLUVIAL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLUVIAL_DATABASE_URL", raising=False)
    monkeypatch.delenv("FLUVIAL_STORE", raising=False)
    monkeypatch.setenv("FLUVIAL_PROGRESS", "off")
    store._reset_for_tests()
    yield tmp_path / "home"
    store._reset_for_tests()


@pytest.fixture
def conn(backend: str) -> Iterator[Any]:
    from fluvial.store.connection import open_database

    connection = open_database()
    yield connection
    connection.close()


@pytest.fixture
def add_deployment(conn: Any) -> AddDeployment:
    def add(schedules: list[Any], **kwargs: Any) -> str:
        return insert_deployment(conn, schedules, **kwargs)

    return add
