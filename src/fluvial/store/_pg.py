"""PostgreSQL connections (psycopg 3), shaped like the ``sqlite3`` ones the store uses.

Only this module imports psycopg, and only when a ``postgresql://`` URL is
opened: without psycopg, SQLite works as before and a PostgreSQL URL is a
clear error naming the install command.

A :class:`PgConnection` is in autocommit mode with psycopg's raw cursor, so the
store's SQL (see :mod:`fluvial.store._sql`) runs unchanged. SQLite's
``BEGIN IMMEDIATE`` becomes ``BEGIN`` plus a transaction-scoped advisory lock
(:data:`WRITE_LOCK`, one per database schema): writers still take turns, as on
SQLite, while readers are never blocked. Waiting for it is bounded by
``lock_timeout``, as SQLite's busy timeout bounds a wait for its write lock.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from fluvial.store._errors import StoreError
from fluvial.store._sql import POSTGRESQL, to_postgres

__all__ = ["PgConnection", "begin_write", "connect", "is_transient", "redact"]

# pg_advisory_xact_lock(key1, key2): "fluv", then the schema's name hashed
WRITE_LOCK = "SELECT pg_advisory_xact_lock(1718384246, hashtext(coalesce(current_schema(), '')))"
INSTALL_HINT = "pip install psycopg[binary] (or pip install 'fluvial[postgres]')"


def redact(url: str) -> str:
    """``url`` without its password."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


class PgConnection:
    """A psycopg connection with the ``sqlite3.Connection`` methods the store calls."""

    dialect = POSTGRESQL

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement; the cursor has ``fetchone``/``fetchall``/``rowcount``."""
        cursor = self.raw.cursor()
        cursor.execute(to_postgres(sql), params or None)
        return cursor

    def executemany(self, sql: str, seq_of_params: Iterable[Sequence[Any]]) -> Any:
        """Run one statement per parameter tuple, pipelined."""
        cursor = self.raw.cursor()
        cursor.executemany(to_postgres(sql), seq_of_params)
        return cursor

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    @property
    def broken(self) -> bool:
        """The connection to the server is lost; a new one is needed."""
        return bool(self.raw.broken or self.raw.closed)

    def close(self) -> None:
        self.raw.close()

    def forget_after_fork(self) -> None:
        """In a forked child: never talk on the parent's socket, not even to say goodbye.

        Closing (or garbage-collecting) the connection would send the server a
        terminate message over the socket the parent still uses; pointing the
        child's copy of that descriptor at /dev/null makes it harmless.
        """
        try:
            fd = self.raw.pgconn.socket
            null = os.open(os.devnull, os.O_RDWR)
            try:
                os.dup2(null, fd)
            finally:
                os.close(null)
        except Exception:  # already closed: nothing shared to protect
            pass


def connect(url: str, lock_timeout_s: float) -> PgConnection:
    """A new autocommit connection to the PostgreSQL store at ``url``."""
    try:
        import psycopg
    except ImportError:
        raise StoreError(
            f"FLUVIAL_DATABASE_URL is a PostgreSQL URL ({url.split('@')[-1]!r}) "
            f"but psycopg is not installed: {INSTALL_HINT}"
        ) from None
    conninfo = re.sub(r"^postgresql\+\w+://", "postgresql://", url)
    kwargs: dict[str, Any] = {"application_name": "fluvial"}
    if "connect_timeout" not in conninfo:
        kwargs["connect_timeout"] = 10
    try:
        raw = psycopg.connect(conninfo, autocommit=True, cursor_factory=psycopg.RawCursor, **kwargs)
        raw.execute(f"SET lock_timeout = {int(lock_timeout_s * 1000)}")
    except psycopg.Error as exc:
        raise StoreError(f"cannot open the fluvial store at {redact(url)}: {exc}") from exc
    return PgConnection(raw)


def begin_write(conn: PgConnection) -> None:
    """Start a write transaction holding the store's write lock."""
    conn.execute("BEGIN")
    try:
        conn.execute(WRITE_LOCK)
    except BaseException:
        rollback(conn)
        raise


def rollback(conn: PgConnection) -> None:
    """Roll back, unless the connection is gone (the server rolls back for us)."""
    if not conn.broken:
        conn.execute("ROLLBACK")


def errors() -> tuple[type[BaseException], ...]:
    """psycopg's base error, if psycopg was imported."""
    psycopg = sys.modules.get("psycopg")
    return (psycopg.Error,) if psycopg is not None else ()


def is_transient(exc: BaseException) -> bool:
    """Whether a write that failed with ``exc`` may succeed if tried again."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is None:
        return False
    transient = (
        psycopg.errors.SerializationFailure,
        psycopg.errors.DeadlockDetected,
        psycopg.errors.LockNotAvailable,
        psycopg.OperationalError,  # the connection was lost: the writer reconnects
    )
    return isinstance(exc, transient)
