"""Settings: store location and database URL, read at call time."""

from __future__ import annotations

import sys
import time
import uuid
from pathlib import Path

import pytest

import fluvial.store as store
from fluvial.store import StoreError, queries
from fluvial.store.connection import database_target


def test_default_home(monkeypatch) -> None:
    monkeypatch.delenv("FLUVIAL_HOME")
    assert store.store_path() == Path.home() / ".fluvial" / "fluvial.db"


def test_sqlite_url_overrides_home(monkeypatch, tmp_path, home) -> None:
    db = tmp_path / "elsewhere" / "runs.db"
    monkeypatch.setenv("FLUVIAL_DATABASE_URL", f"sqlite:///{db}")
    assert store.database_url() == f"sqlite:///{db}"
    assert store.store_path() == db
    rec = store.get_recorder()
    run = uuid.uuid4()
    rec.flow_run_created(run, "r", "f", {}, (), None, time.time())
    rec.flush()
    assert db.exists() and not (home / "fluvial.db").exists()
    assert queries.get_flow_run(run).id == run


@pytest.mark.parametrize(
    ("url", "path"),
    [("sqlite:////abs/x.db", Path("/abs/x.db")), ("sqlite:///rel/x.db", Path("rel/x.db"))],
)
def test_sqlite_url_paths(url: str, path: Path) -> None:
    target = database_target(url)
    assert (target.dialect, target.path) == ("sqlite", path)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("sqlite://", "in-memory"),
        ("sqlite:///:memory:", "in-memory"),
        ("mysql://x/y", "unsupported database URL scheme 'mysql'"),
        ("just-a-path.db", "is not a URL"),
    ],
)
def test_bad_urls(url: str, match: str) -> None:
    with pytest.raises(StoreError, match=match):
        database_target(url)


def test_postgres_without_psycopg_says_what_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import fails
    monkeypatch.setenv("FLUVIAL_DATABASE_URL", "postgresql://user:secret@db.example/fluvial")
    with pytest.raises(StoreError, match="pip install psycopg") as info:
        store.get_recorder()
    assert "secret" not in str(info.value)
    with pytest.raises(StoreError, match="pip install psycopg"):
        queries.list_flow_runs()


def test_exported_names() -> None:
    for name in store.__all__:
        assert getattr(store, name) is not None
    assert store.Recorder.__name__ == "Recorder"
