"""Every store test gets its own FLUVIAL_HOME and a fresh recorder singleton.

A test that asks for ``backend`` (directly, or through ``recorder``/``make_flow_run``)
runs twice: on the embedded SQLite store and on PostgreSQL, each time on a
fresh database. PostgreSQL is a real throwaway server started once per session
(see ``pg_server.py``); where none can be had the PostgreSQL variants skip,
saying why. ``FLUVIAL_TEST_POSTGRES_URL`` (a superuser URL) uses an existing
server instead.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_server import PgServer, Unavailable, find_or_install_binaries

import fluvial.store as store
from fluvial.store.recorder import Recorder

BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


class _ExistingServer:
    """``FLUVIAL_TEST_POSTGRES_URL``: databases made on a server someone else runs."""

    def __init__(self, url: str) -> None:
        import psycopg

        self._url = url
        self._admin = psycopg.connect(url, autocommit=True)
        self._prefix = f"fluvial_test_{os.getpid()}_"
        self._count = 0

    def create_database(self) -> str:
        self._count += 1
        name = f"{self._prefix}{self._count}"
        self._admin.execute(f"DROP DATABASE IF EXISTS {name}")
        self._admin.execute(f"CREATE DATABASE {name}")
        base, _, _ = self._url.partition("?")
        return base.rsplit("/", 1)[0] + "/" + name

    def stop(self) -> None:
        for i in range(1, self._count + 1):
            self._admin.execute(f"DROP DATABASE IF EXISTS {self._prefix}{i} WITH (FORCE)")
        self._admin.close()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A PostgreSQL server for the session: started here, stopped and deleted at the end."""
    try:
        import psycopg  # noqa: F401
    except ImportError:
        pytest.skip("psycopg is not installed: pip install 'fluvial[postgres]'")
    existing = os.environ.get("FLUVIAL_TEST_POSTGRES_URL")
    if existing:
        server: Any = _ExistingServer(existing)
    else:
        try:
            server = PgServer.start(find_or_install_binaries())
        except Unavailable as exc:
            pytest.skip(f"PostgreSQL server binaries not available: {exc}")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_url(pg_server: Any, home: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh PostgreSQL database, set as ``FLUVIAL_DATABASE_URL``; its URL."""
    url = pg_server.create_database()
    monkeypatch.setenv("FLUVIAL_DATABASE_URL", url)
    store._reset_for_tests()
    return url


@pytest.fixture
def backend(request: pytest.FixtureRequest, home: Path) -> str:
    """``"sqlite"`` or ``"postgresql"``: the store the test's settings point at."""
    if request.param == "postgresql":
        request.getfixturevalue("pg_url")
    return request.param


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("FLUVIAL_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FLUVIAL_DATABASE_URL", raising=False)
    monkeypatch.delenv("FLUVIAL_STORE", raising=False)
    store._reset_for_tests()
    yield tmp_path / "home"
    store._reset_for_tests()


@pytest.fixture
def recorder(backend: str) -> Recorder:
    rec = store.get_recorder()
    assert rec is not None
    return rec


@pytest.fixture
def make_flow_run(recorder: Recorder):
    """``make_flow_run(tasks=3, fail=None, flow_name="etl")``: a complete, flushed flow run."""

    def make(**kwargs):
        return record_flow_run(recorder, **kwargs)

    return make


def record_flow_run(
    rec: Recorder,
    *,
    flow_name: str = "etl",
    tasks: int = 3,
    fail: int | None = None,
    start: float | None = None,
) -> uuid.UUID:
    """A complete flow run with ``tasks`` task runs (task ``fail`` fails), flushed."""
    t = start if start is not None else time.time()
    flow_run_id = uuid.uuid4()
    rec.flow_run_created(flow_run_id, "brave-otter", flow_name, {"n": tasks}, ["nightly"], None, t)
    rec.state(flow_run_id, "PENDING", "Pending", None, t)
    rec.state(flow_run_id, "RUNNING", "Running", None, t + 0.1)
    rec.log(flow_run_id, 20, "flow started", t + 0.1)
    for i in range(tasks):
        task_id = uuid.uuid4()
        ts = t + 0.2 + i
        rec.task_run_created(task_id, flow_run_id, f"extract-{i}", "extract", ["io"], ts)
        rec.state(task_id, "PENDING", "Pending", None, ts)
        rec.state(task_id, "RUNNING", "Running", None, ts + 0.01)
        rec.log(task_id, 20, f"task {i} working", ts + 0.02)
        if i == fail:
            rec.state(task_id, "FAILED", "Failed", "ValueError: bad row 7", ts + 0.5)
        else:
            rec.state(task_id, "COMPLETED", "Completed", None, ts + 0.5, f"/results/{i}")
    end = t + 0.3 + tasks
    if fail is None:
        rec.state(flow_run_id, "COMPLETED", "Completed", None, end)
    else:
        rec.state(flow_run_id, "FAILED", "Failed", "1/3 states failed", end)
    rec.flush(timeout=10)
    return flow_run_id
