"""The server's connections to the run record: one per worker thread, opened on first use.

FastAPI runs synchronous endpoints in a thread pool; each thread keeps one
connection (SQLite connections are cheap but not free to open, PostgreSQL ones are
not cheap). A connection that errors is dropped and reopened by the next request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["close_all", "connection"]

_local = threading.local()
_all: list[Any] = []
_lock = threading.Lock()


@contextmanager
def connection() -> Iterator[Any]:
    """This thread's connection (a new one after an error)."""
    from fluvial.store.connection import database_errors, open_database

    conn = getattr(_local, "conn", None)
    if conn is None:
        conn = open_database()
        _local.conn = conn
        with _lock:
            _all.append(conn)
    try:
        yield conn
    except database_errors():
        _local.conn = None
        try:
            conn.close()
        finally:
            raise


def close_all() -> None:
    with _lock:
        for conn in _all:
            try:
                conn.close()
            except Exception:  # noqa: BLE001, S110 - closing on shutdown: nothing to do about it
                pass
        _all.clear()
    _local.conn = None
