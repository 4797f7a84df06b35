"""Migrations are applied once, in order, atomically; connections are set up for concurrency."""

from __future__ import annotations

import sqlite3

import pytest

from fluvial.store import StoreError, _db
from fluvial.store._schema import MIGRATIONS, current_version, migrate


def _conn(home) -> sqlite3.Connection:
    home.mkdir(parents=True, exist_ok=True)
    return sqlite3.connect(home / "t.db", isolation_level=None)


def _tables(conn: sqlite3.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_fresh_database_gets_every_table(home) -> None:
    conn = _conn(home)
    assert current_version(conn) == 0
    assert migrate(conn) == len(MIGRATIONS)
    assert current_version(conn) == len(MIGRATIONS)
    assert {
        "schema_version",
        "flow_runs",
        "task_runs",
        "state_history",
        "logs",
        "concurrency_limits",
    } <= _tables(conn)
    columns = [r[1] for r in conn.execute("PRAGMA table_info(concurrency_limits)")]
    assert columns == ["tag", "limit", "slot_decay_per_second", "created", "updated"]


def test_migrations_apply_once_and_in_order(home) -> None:
    calls: list[str] = []

    def first(conn: sqlite3.Connection) -> None:
        calls.append("first")
        conn.execute("CREATE TABLE a (x)")

    def second(conn: sqlite3.Connection) -> None:
        calls.append("second")
        conn.execute("ALTER TABLE a ADD COLUMN y")

    conn = _conn(home)
    assert migrate(conn, [first]) == 1
    assert migrate(conn, [first]) == 1
    assert migrate(conn, [first, second]) == 2
    assert migrate(conn, [first, second]) == 2
    assert calls == ["first", "second"]
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]


def test_a_failing_migration_leaves_the_database_unchanged(home) -> None:
    def good(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE good (x)")

    def bad(conn: sqlite3.Connection) -> None:
        conn.execute("CREATE TABLE half (x)")
        raise RuntimeError("boom")

    conn = _conn(home)
    migrate(conn, [good])
    with pytest.raises(RuntimeError, match="boom"):
        migrate(conn, [good, bad])
    assert current_version(conn) == 1
    assert "half" not in _tables(conn)
    assert not conn.in_transaction


def test_a_newer_schema_is_refused(home) -> None:
    conn = _conn(home)
    migrate(conn, [lambda c: None, lambda c: None])
    with pytest.raises(StoreError, match="upgrade fluvial"):
        migrate(conn, [lambda c: None])


def test_connections_use_wal_normal_sync_and_a_busy_timeout(home) -> None:
    conn = _db.connect()
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (int(_db.BUSY_TIMEOUT_S * 1000),)


def test_opening_the_store_twice_migrates_once(home) -> None:
    with _db.reading() as conn:
        assert current_version(conn) == len(MIGRATIONS)
    _db.reset_caches()
    with _db.reading() as conn:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)


def test_an_unreadable_store_gives_a_store_error(home) -> None:
    home.mkdir(parents=True)
    (home / "fluvial.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the fluvial store"):
        _db.open_database()
