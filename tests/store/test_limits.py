"""Concurrency limits as stored, through their one public path (``fluvial.concurrency``)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

import fluvial.concurrency as conc
from fluvial.concurrency import InProcessSlotManager, Limit
from fluvial.concurrency._limits import invalidate_cache, stored_limit
from fluvial.store import connection, queries
from fluvial.store.queries import LimitRecord


def test_limit_round_trip(backend) -> None:
    before = time.time()
    record = conc.set_limit("db", 3)
    assert isinstance(record, LimitRecord)
    assert (record.tag, record.limit, record.slot_decay_per_second) == ("db", 3, None)
    assert record.created == record.updated >= before
    assert conc.get_limit("db") == record
    assert conc.get_limit("missing") is None


def test_set_limit_replaces_and_keeps_created(backend) -> None:
    first = conc.set_limit("gpu", 2)
    time.sleep(0.01)
    second = conc.set_limit("gpu", 0, slot_decay_per_second=0.5)
    assert (second.limit, second.slot_decay_per_second) == (0, 0.5)
    assert second.created == first.created and second.updated > first.updated
    assert conc.list_limits() == [second]


def test_list_and_delete(backend) -> None:
    for tag in ["b", "a", "c"]:
        conc.set_limit(tag, 1)
    assert [r.tag for r in conc.list_limits()] == ["a", "b", "c"]
    assert conc.delete_limit("b") is True
    assert conc.delete_limit("b") is False
    assert [r.tag for r in conc.list_limits()] == ["a", "c"]


@pytest.mark.parametrize(
    ("tag", "limit", "decay", "error", "match"),
    [
        ("", 1, None, ValueError, "non-empty"),
        ("   ", 1, None, ValueError, "non-empty"),
        ("t", -1, None, ValueError, "must be 0 or more, got -1"),
        ("t", 1.5, None, TypeError, "must be an integer, got 1.5"),
        ("t", "3", None, TypeError, "must be an integer, got '3'"),
        ("t", True, None, TypeError, "must be an integer, got True"),
        ("t", 1, -0.1, ValueError, "slot_decay_per_second must be a finite number"),
        ("t", 1, float("nan"), ValueError, "slot_decay_per_second must be a finite number"),
        ("t", 1, "fast", TypeError, "slot_decay_per_second must be a number"),
    ],
)
def test_invalid_limits_are_refused(backend, tag, limit, decay, error, match) -> None:
    with pytest.raises(error, match=match):
        conc.set_limit(tag, limit, slot_decay_per_second=decay)
    assert conc.list_limits() == []


def test_a_tag_is_checked_on_every_path(backend) -> None:
    with pytest.raises(TypeError, match="tag must be a string, got 3"):
        conc.get_limit(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty"):
        conc.delete_limit("")


def _dead_driver_run() -> str:
    """A RUNNING flow run whose driver is gone: crash recovery would write to it."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    run_id = str(uuid.uuid4())
    with connection.reading() as conn:
        conn.execute(
            "INSERT INTO flow_runs (id, name, flow_name, created, pid, hostname, state_type) "
            "VALUES (?, 'r', 'f', ?, ?, ?, 'RUNNING')",
            (run_id, time.time(), proc.pid, socket.gethostname()),
        )
    return run_id


def test_the_admission_refresh_opens_nothing_and_writes_nothing(
    backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    conc.set_limit("db", 2)
    dead = _dead_driver_run()
    opened: list[object] = []
    real_connect = connection.connect

    def counting_connect(target=None):
        opened.append(target)
        return real_connect(target)

    monkeypatch.setattr(connection, "connect", counting_connect)
    observer = real_connect()
    version = observer.execute("PRAGMA data_version").fetchone() if backend == "sqlite" else None
    for _ in range(20):
        invalidate_cache()  # as if a second had passed each time
        assert stored_limit("db") == Limit(2)
    assert len(opened) <= 1  # one connection, kept open for every refresh
    if backend == "sqlite":  # no other connection committed anything
        assert observer.execute("PRAGMA data_version").fetchone() == version
    observer.close()
    assert queries.get_flow_run(dead).state_type == "RUNNING"  # no recovery on the way


def test_a_limit_raised_by_another_process_wakes_waiters(backend, home) -> None:
    conc.set_limit("db", 0)
    manager = InProcessSlotManager()
    got: list[object] = []
    manager.request("db", 1, got.append)
    assert got == []
    subprocess.run(
        [sys.executable, "-c", "import fluvial.concurrency as c; c.set_limit('db', 1)"],
        env=dict(os.environ),
        check=True,
    )
    invalidate_cache()  # the next request refreshes, as it would a second later
    assert stored_limit("db") == Limit(1)
    deadline = time.monotonic() + 10
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(got) == 1
