"""Write transactions on either database: take the write lock up front, roll back on error.

SQLite: ``BEGIN IMMEDIATE``. PostgreSQL: ``BEGIN`` plus the store's advisory
write lock (see :mod:`fluvial.store._pg`). Either way one writer at a time,
and readers are never blocked.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from fluvial.store import _pg
from fluvial.store._sql import POSTGRESQL, dialect_of

__all__ = ["begin_write", "rollback", "transaction"]


def begin_write(conn: Any) -> None:
    """Start a transaction that holds the store's write lock."""
    if dialect_of(conn) == POSTGRESQL:
        _pg.begin_write(conn)
    else:
        conn.execute("BEGIN IMMEDIATE")


def rollback(conn: Any) -> None:
    """Roll back the open transaction (nothing to do on a lost PostgreSQL connection)."""
    if dialect_of(conn) == POSTGRESQL:
        _pg.rollback(conn)
    else:
        conn.execute("ROLLBACK")


@contextmanager
def transaction(conn: Any) -> Iterator[Any]:
    """One write transaction: committed on success, rolled back on any error."""
    begin_write(conn)
    try:
        yield conn
    except BaseException:
        rollback(conn)
        raise
    conn.execute("COMMIT")
