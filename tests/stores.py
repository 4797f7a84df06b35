"""The run record's backends for the tests: ``backend`` runs a test on SQLite and on
PostgreSQL, each time on a fresh database.

PostgreSQL is a real throwaway server (``tests/store/pg_server.py``) started once per
session for every directory that asks for it; where none can be had the PostgreSQL
variants skip, saying why. ``FLUVIAL_TEST_POSTGRES_URL`` (a superuser URL) uses an
existing server instead. ``backend`` and ``pg_url`` use the ``home`` fixture of the
test's directory (each sets a fresh ``FLUVIAL_HOME`` and resets the store).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent / "store"))

from pg_server import PgServer, Unavailable, find_or_install_binaries  # noqa: E402

import fluvial.store as store  # noqa: E402

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
