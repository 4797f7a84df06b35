"""Migrations are applied once, in order, atomically; connections are set up for concurrency.

The migration tests run on both backends, each on a fresh, empty database.
"""

from __future__ import annotations

import threading
import time

import pytest

import fluvial.store as store
from fluvial.store import StoreError, connection
from fluvial.store.dialects import POSTGRESQL, dialect_of
from fluvial.store.schema import MIGRATIONS, current_version, migrate


def _tables(conn: connection.Connection) -> set[str]:
    if dialect_of(conn) == POSTGRESQL:
        sql = (
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
        )
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
    return {r[0] for r in conn.execute(sql)}


def _columns(conn: connection.Connection, table: str) -> list[str]:
    if dialect_of(conn) == POSTGRESQL:
        rows = conn.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position",
            (table,),
        )
        return [r[0] for r in rows]
    return [r[1] for r in conn.execute(f"PRAGMA table_info({table})")]


def test_fresh_database_gets_every_table(backend) -> None:
    conn = connection.connect()
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
    columns = _columns(conn, "concurrency_limits")
    assert columns == ["tag", "limit", "slot_decay_per_second", "created", "updated"]
    conn.close()


def test_postgres_column_types_keep_sqlite_semantics(pg_url) -> None:
    conn = connection.connect()
    migrate(conn)
    types = dict(
        conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = 'flow_runs'"
        ).fetchall()
    )
    assert types["created"] == types["heartbeat"] == "double precision"  # not 4-byte REAL
    assert types["pid"] == "bigint"
    collations = conn.execute(
        "SELECT DISTINCT collation_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND data_type = 'text'"
    ).fetchall()
    assert collations == [("C",)]  # bytewise, like SQLite: id prefixes and ORDER BY agree
    conn.close()


def test_migrations_apply_once_and_in_order(backend) -> None:
    calls: list[str] = []

    def first(conn: connection.Connection) -> None:
        calls.append("first")
        conn.execute("CREATE TABLE a (x INTEGER)")

    def second(conn: connection.Connection) -> None:
        calls.append("second")
        conn.execute("ALTER TABLE a ADD COLUMN y INTEGER")

    conn = connection.connect()
    assert migrate(conn, [first]) == 1
    assert migrate(conn, [first]) == 1
    assert migrate(conn, [first, second]) == 2
    assert migrate(conn, [first, second]) == 2
    assert calls == ["first", "second"]
    assert conn.execute("SELECT version FROM schema_version").fetchall() == [(2,)]
    conn.close()


def test_a_failing_migration_leaves_the_database_unchanged(backend) -> None:
    def good(conn: connection.Connection) -> None:
        conn.execute("CREATE TABLE good (x INTEGER)")

    def bad(conn: connection.Connection) -> None:
        conn.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("boom")

    conn = connection.connect()
    migrate(conn, [good])
    with pytest.raises(RuntimeError, match="boom"):
        migrate(conn, [good, bad])
    assert current_version(conn) == 1
    assert "half" not in _tables(conn)
    assert not conn.in_transaction
    conn.close()


def test_a_newer_schema_is_refused(backend) -> None:
    conn = connection.connect()
    migrate(conn, [lambda c: None, lambda c: None])
    with pytest.raises(StoreError, match="upgrade fluvial"):
        migrate(conn, [lambda c: None])
    assert not conn.in_transaction
    conn.close()


def test_concurrent_migrations_apply_each_step_once(backend) -> None:
    """Two processes opening a new store at once: one migrates, the other waits and sees it."""
    calls: list[str] = []

    def slow(conn: connection.Connection) -> None:
        calls.append("slow")
        conn.execute("CREATE TABLE slow (x INTEGER)")
        time.sleep(0.3)  # the other connection arrives meanwhile

    results: list[int] = []
    errors: list[BaseException] = []

    def run() -> None:
        conn = connection.connect()
        try:
            results.append(migrate(conn, [slow]))
        except BaseException as exc:
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert results == [1, 1, 1]
    assert calls == ["slow"]


def test_connections_use_wal_normal_sync_and_a_busy_timeout(home) -> None:
    conn = connection.connect()
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert conn.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL
    assert conn.execute("PRAGMA busy_timeout").fetchone() == (int(connection.BUSY_TIMEOUT_S * 1000),)


def test_postgres_connections_autocommit_with_a_lock_timeout(pg_url) -> None:
    conn = connection.connect()
    assert conn.execute("SHOW lock_timeout").fetchone() == (f"{int(connection.BUSY_TIMEOUT_S)}s",)
    assert conn.raw.autocommit and not conn.in_transaction
    conn.close()


def test_opening_the_store_twice_migrates_once(backend) -> None:
    with connection.reading() as conn:
        assert current_version(conn) == len(MIGRATIONS)
    connection.reset_caches()
    with connection.reading() as conn:
        assert conn.execute("SELECT count(*) FROM schema_version").fetchone() == (1,)


def test_an_unreadable_store_gives_a_store_error(home) -> None:
    home.mkdir(parents=True)
    (home / "fluvial.db").write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="cannot open the fluvial store"):
        connection.open_database()


def test_the_platform_tables_and_flow_run_columns(backend) -> None:
    conn = connection.connect()
    migrate(conn)
    assert {"deployments", "deployment_schedules", "schedule_ticks", "workers"} <= _tables(conn)
    assert _columns(conn, "deployments")[:15] == [
        "id", "flow_name", "name", "entrypoint", "parameters", "parameter_schema", "tags",
        "description", "version", "work_pool", "concurrency_limit", "collision_strategy",
        "paused", "created", "updated",
    ]  # fmt: skip
    assert _columns(conn, "deployment_schedules") == [
        "id", "deployment_id", "slug", "schedule", "active", "next_fire_time", "last_fired_time",
    ]  # fmt: skip
    assert _columns(conn, "schedule_ticks") == [
        "seq", "deployment_id", "schedule_slug", "fire_time", "decided_at", "outcome",
        "reason", "flow_run_id",
    ]  # fmt: skip
    assert _columns(conn, "workers") == [
        "id", "name", "work_pool", "hostname", "pid", "heartbeat", "started",
    ]  # fmt: skip
    assert _columns(conn, "flow_runs")[-11:] == [
        "deployment_id", "idempotency_key", "scheduled_start_time", "work_pool", "worker_id",
        "claimed_at", "code_version", "infrastructure_pid", "run_input",
        "job_parameters", "attempt",
    ]  # fmt: skip
    assert _columns(conn, "deployments")[-2:] == ["source", "retries"]
    assert _columns(conn, "task_queue") == [
        "id", "task_key", "task_name", "payload", "status", "created", "worker_id",
        "claimed_at", "result", "finished",
    ]  # fmt: skip
    conn.close()


def test_one_flow_run_per_idempotency_key(backend) -> None:
    """The scheduler's guarantee: a second insert of the same key does nothing."""
    conn = connection.connect()
    migrate(conn)
    insert = (
        "INSERT INTO flow_runs (id, flow_name, idempotency_key, state_type) "
        "VALUES (?, 'f', ?, 'SCHEDULED') ON CONFLICT DO NOTHING"
    )
    assert conn.execute(insert, ("a", "dep:slug:2026-01-01T08:00:00+00:00")).rowcount == 1
    assert conn.execute(insert, ("b", "dep:slug:2026-01-01T08:00:00+00:00")).rowcount == 0
    assert conn.execute(insert, ("c", None)).rowcount == 1  # runs without a key: any number
    assert conn.execute(insert, ("d", None)).rowcount == 1
    ids = [r[0] for r in conn.execute("SELECT id FROM flow_runs ORDER BY id")]
    assert ids == ["a", "c", "d"]
    conn.close()


def test_one_deployment_per_flow_and_name(backend) -> None:
    conn = connection.connect()
    migrate(conn)
    insert = (
        "INSERT INTO deployments (id, flow_name, name, created, updated) "
        "VALUES (?, ?, ?, 0, 0) ON CONFLICT DO NOTHING"
    )
    assert conn.execute(insert, ("1", "etl", "daily")).rowcount == 1
    assert conn.execute(insert, ("2", "etl", "daily")).rowcount == 0
    assert conn.execute(insert, ("3", "etl", "hourly")).rowcount == 1
    assert conn.execute(insert, ("4", "other", "daily")).rowcount == 1
    conn.close()


def test_a_version_1_store_upgrades_with_its_runs_kept(backend) -> None:
    conn = connection.connect()
    migrate(conn, MIGRATIONS[:1])
    conn.execute("INSERT INTO flow_runs (id, flow_name, state_type) VALUES ('r', 'f', 'COMPLETED')")
    assert migrate(conn) == len(MIGRATIONS)
    row = conn.execute(
        "SELECT flow_name, state_type, deployment_id, idempotency_key FROM flow_runs"
    ).fetchall()
    assert row == [("f", "COMPLETED", None, None)]
    conn.close()


def test_threads_opening_a_new_sqlite_store_at_once_all_get_it() -> None:
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def open_it() -> None:
        start.wait()
        try:
            with connection.reading() as conn:
                conn.execute("SELECT count(*) FROM flow_runs").fetchone()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    for _ in range(20):  # a fresh file each round
        store._reset_for_tests()
        connection.store_path().unlink(missing_ok=True)
        threads = [threading.Thread(target=open_it) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
