"""What only PostgreSQL has: URLs, connection errors, a lost connection, the write lock.

The store's behaviour itself (round trips, batches, crash recovery, queries,
limits, the CLI) is covered on both backends by the other modules.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

import fluvial.store as store
from fluvial.store import StoreError, connection, queries
from fluvial.store.connection import database_target, transaction
from fluvial.store.dialects import to_postgres


@pytest.mark.parametrize("scheme", ["postgresql", "postgres", "postgresql+psycopg"])
def test_url_schemes(pg_url, monkeypatch, scheme) -> None:
    url = scheme + pg_url.removeprefix("postgresql")
    assert database_target(url).dialect == "postgresql"
    monkeypatch.setenv("FLUVIAL_DATABASE_URL", url)
    rec = store.get_recorder()
    run = uuid.uuid4()
    rec.flow_run_created(run, "r", "f", {}, (), None, time.time())
    rec.flush()
    assert queries.get_flow_run(run).id == run


def test_an_unreachable_server_is_a_store_error_without_the_password(pg_url, monkeypatch) -> None:
    port = int(pg_url.rsplit(":", 1)[1].split("/")[0])
    url = f"postgresql://fluvial:hunter2@127.0.0.1:{port + 1}/nope?connect_timeout=2"
    monkeypatch.setenv("FLUVIAL_DATABASE_URL", url)
    with pytest.raises(StoreError, match="cannot open the fluvial store at") as info:
        store.get_recorder()
    assert "hunter2" not in str(info.value) and "fluvial:***@" in str(info.value)
    with pytest.raises(StoreError):
        queries.list_flow_runs()


def test_a_missing_database_is_a_store_error(pg_url, monkeypatch) -> None:
    monkeypatch.setenv("FLUVIAL_DATABASE_URL", pg_url.rsplit("/", 1)[0] + "/no_such_db")
    with pytest.raises(StoreError, match="no_such_db"):
        queries.list_flow_runs()


def test_placeholders_are_rewritten_outside_quotes() -> None:
    assert to_postgres("SELECT ? , ? FROM t WHERE a = '?' AND \"b?\" = ?") == (
        "SELECT $1 , $2 FROM t WHERE a = '?' AND \"b?\" = $3"
    )
    assert to_postgres("UPDATE t SET a = ?2 WHERE id = ?1 OR x = ?1") == (
        "UPDATE t SET a = $2 WHERE id = $1 OR x = $1"
    )
    with pytest.raises(ValueError, match="mixes"):
        to_postgres("SELECT ?, ?1")


def test_the_writer_reconnects_when_the_server_drops_it(pg_url) -> None:
    recorder = store.get_recorder()
    first = uuid.uuid4()
    recorder.task_run_created(first, None, "before", "k", (), time.time())
    recorder.flush()
    admin = connection.connect()
    killed = admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE application_name = 'fluvial' AND pid <> pg_backend_pid() "
        "AND datname = current_database()"
    ).fetchall()
    admin.close()
    assert killed and all(ok for (ok,) in killed)
    second = uuid.uuid4()
    recorder.task_run_created(second, None, "after", "k", (), time.time())
    recorder.flush(timeout=30)
    with connection.reading() as conn:
        names = sorted(r[0] for r in conn.execute("SELECT name FROM task_runs"))
    assert names == ["after", "before"]
    assert recorder.events_dropped == 0


def test_writers_take_turns_and_readers_do_not_wait(pg_url) -> None:
    """BEGIN IMMEDIATE's guarantee: one write transaction at a time; readers see the last commit."""
    with connection.reading():
        pass  # migrated
    holder, other, reader = connection.connect(), connection.connect(), connection.connect()
    order: list[str] = []
    with transaction(holder):
        holder.execute("INSERT INTO concurrency_limits VALUES ('held', 1, NULL, 0, 0)")

        def write() -> None:
            with transaction(other):
                order.append("other wrote")
                other.execute("INSERT INTO concurrency_limits VALUES ('next', 1, NULL, 0, 0)")

        thread = threading.Thread(target=write)
        thread.start()
        time.sleep(0.3)
        assert order == []  # still waiting for the write lock
        assert reader.execute("SELECT count(*) FROM concurrency_limits").fetchone() == (0,)
        order.append("holder committed")
    thread.join(timeout=10)
    assert order == ["holder committed", "other wrote"]
    assert reader.execute("SELECT count(*) FROM concurrency_limits").fetchone() == (2,)
    for conn in (holder, other, reader):
        conn.close()


def test_another_database_gets_another_recorder(pg_server, pg_url, monkeypatch) -> None:
    first = store.get_recorder()
    assert first is store.get_recorder() and first.url == pg_url
    monkeypatch.setenv("FLUVIAL_DATABASE_URL", pg_server.create_database())
    second = store.get_recorder()
    assert second is not first and first.closed
    run = uuid.uuid4()
    second.flow_run_created(run, "r", "f", {}, (), None, time.time())
    second.flush()
    assert [r.id for r in queries.list_flow_runs()] == [run]
    monkeypatch.setenv("FLUVIAL_DATABASE_URL", pg_url)
    assert queries.list_flow_runs() == []
