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
_generation = 0  # close_all() makes every thread's connection stale


@contextmanager
def connection() -> Iterator[Any]:
    """This thread's connection to the configured database (a new one after an error)."""
    from fluvial import settings
    from fluvial.store.connection import database_errors, open_database

    key = (_generation, settings.get().database_url)
    conn = getattr(_local, "conn", None)
    if conn is None or getattr(_local, "key", None) != key:
        conn = open_database()
        _local.conn, _local.key = conn, key
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
    global _generation
    with _lock:
        _generation += 1
        for conn in _all:
            try:
                conn.close()
            except Exception:  # noqa: BLE001, S110 - closing on shutdown: nothing to do about it
                pass
        _all.clear()
    _local.conn = None
