"""The record survives a database that stops taking writes (issue 16, item 5): a real
PostgreSQL server stopped in the middle of a flow run, and a SQLite file on a full
disk (a small tmpfs). Nothing is dropped: the backlog is retried, kept in the spill
journal, and written once the database takes writes again (by the same process, or
the next one)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pg_server import PgServer, Unavailable, find_or_install_binaries

from fluvial import flow, store, task


@pytest.fixture(scope="module")
def own_pg_server() -> Iterator[Any]:
    """A PostgreSQL server of this module's own: the tests stop and start it."""
    pytest.importorskip("psycopg")
    try:
        server = PgServer.start(find_or_install_binaries())
    except Unavailable as exc:
        pytest.skip(f"PostgreSQL server binaries not available: {exc}")
    try:
        yield server
    finally:
        server.stop()


@task
def noop(i: int) -> int:
    return i


def _pg_counts(url: str, run_id: Any) -> tuple[int, str | None]:
    import psycopg

    with psycopg.connect(url) as conn:
        tasks = conn.execute("SELECT count(*) FROM task_runs WHERE flow_run_id = %s",
                             (str(run_id),)).fetchone()[0]
        row = conn.execute("SELECT state_name FROM flow_runs WHERE id = %s",
                           (str(run_id),)).fetchone()
    return tasks, row[0] if row else None


def test_postgres_stopped_mid_run_loses_nothing(own_pg_server: Any, home: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    url = own_pg_server.create_database()
    monkeypatch.setenv("FLUVIAL_DATABASE_URL", url)
    store._reset_for_tests()

    @flow
    def through_an_outage() -> None:
        noop.map(range(2000)).wait()
        store.get_recorder().flush()  # type: ignore[union-attr]
        own_pg_server.pause()  # the server goes away with the flow run half recorded
        noop.map(range(2000, 4000)).wait()

    try:
        state = through_an_outage(return_state=True)
        assert state.is_completed()
        own_pg_server.resume()
        store._reset_for_tests()  # the process's exit: the journal is written now
    finally:
        if own_pg_server.postmaster_pid is None or not _alive(own_pg_server.postmaster_pid):
            own_pg_server.resume()
    assert _pg_counts(url, state.run_id) == (4000, "Completed")
    assert not any((home / "journal").glob("*/*/*.batch"))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted afterwards."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_keeps_the_record_in_the_journal_until_there_is_room(
        tiny_disk: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("FLUVIAL_HOME", str(tiny_disk / "home"))
    store._reset_for_tests()

    @flow
    def first() -> None:
        noop.map(range(10)).wait()

    first()  # the database exists; now the disk fills up
    store.get_recorder().flush()  # type: ignore[union-attr]
    filler = tiny_disk / "filler"
    with open(filler, "wb") as fh:
        try:
            while True:
                fh.write(b"\0" * 65536)
                fh.flush()
        except OSError:
            pass

    @flow
    def second() -> None:
        noop.map(range(3000)).wait()

    state = second(return_state=True)
    assert state.is_completed()
    store._reset_for_tests()  # exit with a full disk: the rest stays in the journal
    filler.unlink()  # room again; the next process (here: recorder) replays the journal
    assert store.get_recorder() is not None
    conn = sqlite3.connect(tiny_disk / "home" / "fluvial.db")
    try:
        tasks = conn.execute("SELECT count(*) FROM task_runs WHERE flow_run_id = ?",
                             (str(state.run_id),)).fetchone()[0]
        row = conn.execute("SELECT state_name FROM flow_runs WHERE id = ?",
                           (str(state.run_id),)).fetchone()
    finally:
        conn.close()
    assert (tasks, row[0] if row else None) == (3000, "Completed")
