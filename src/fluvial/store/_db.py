"""Opening the database: connection settings, the schema, crash recovery.

Every connection is in autocommit mode; writes go through :func:`transaction`,
which takes the write lock up front so concurrent writers queue instead of
failing on a lock upgrade. On SQLite that is ``BEGIN IMMEDIATE`` with a busy
timeout, in WAL mode with ``synchronous=NORMAL``: readers never block the
writer, and a crash loses at most the last batches, never the file. On
PostgreSQL (``FLUVIAL_DATABASE_URL=postgresql://...``, see
:mod:`fluvial.store._pg`) it is ``BEGIN`` plus an advisory lock, bounded by
``lock_timeout``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

from fluvial.store import _pg
from fluvial.store._config import DatabaseTarget, database_target
from fluvial.store._errors import StoreError
from fluvial.store._schema import migrate
from fluvial.store._sql import POSTGRESQL
from fluvial.store._txn import transaction

if TYPE_CHECKING:
    from fluvial.store._pg import PgConnection

__all__ = [
    "BUSY_TIMEOUT_S",
    "Connection",
    "connect",
    "database_errors",
    "is_transient",
    "open_database",
    "reading",
    "transaction",
]


Connection: TypeAlias = "sqlite3.Connection | PgConnection"

BUSY_TIMEOUT_S = 30.0
CACHE_KIB = 32 * 1024  # page cache per connection: a ceiling, not an allocation

_lock = threading.Lock()
_migrated: set[str] = set()


def database_errors() -> tuple[type[BaseException], ...]:
    """The exception types a database call can raise (psycopg's only once imported)."""
    return (sqlite3.Error, *_pg.errors())


def is_transient(exc: BaseException) -> bool:
    """Whether a write transaction that failed with ``exc`` may succeed if retried."""
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc)
    return _pg.is_transient(exc)


def _where(target: DatabaseTarget) -> str:
    return str(target.path) if target.path is not None else _pg.redact(target.url)


def connect(target: DatabaseTarget | None = None) -> Connection:
    """A new autocommit connection to the store; does not migrate.

    SQLite: WAL, ``synchronous=NORMAL`` and a busy timeout; creates the file
    (and its directory) if needed. PostgreSQL: a ``lock_timeout`` as long.
    """
    target = target or database_target()
    if target.dialect == POSTGRESQL:
        return _pg.connect(target.url, BUSY_TIMEOUT_S)
    assert target.path is not None
    try:
        target.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            target.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the fluvial store at {target.path}: {exc}") from exc
    return conn


def open_database(target: DatabaseTarget | None = None) -> Connection:
    """Connect, migrate the schema (once per process) and mark runs of dead drivers crashed."""
    from fluvial.store._recovery import recover_crashed_runs

    target = target or database_target()
    conn = connect(target)
    try:
        key = target.url if target.path is None else str(target.path)
        with _lock:
            if key not in _migrated:
                migrate(conn)
                _migrated.add(key)
        recover_crashed_runs(conn)
    except database_errors() as exc:
        conn.close()
        raise StoreError(f"cannot open the fluvial store at {_where(target)}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def reading(target: DatabaseTarget | None = None) -> Iterator[Any]:
    """An opened connection for the read API, closed on exit."""
    conn = open_database(target)
    try:
        yield conn
    finally:
        conn.close()


def reset_caches() -> None:
    """Forget which databases this process has migrated (tests)."""
    with _lock:
        _migrated.clear()
