"""Opening the database: connection settings, the schema, crash recovery.

Every connection is in autocommit mode (``isolation_level=None``); writes go
through :func:`transaction`, which takes the write lock up front
(``BEGIN IMMEDIATE``) so concurrent writers queue on the busy timeout instead
of failing on a lock upgrade. SQLite runs in WAL mode with
``synchronous=NORMAL``: readers never block the writer, and a crash loses at
most the last batches, never the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from fluvial.store._config import DatabaseTarget, database_target
from fluvial.store._errors import StoreError
from fluvial.store._schema import migrate

__all__ = ["BUSY_TIMEOUT_S", "connect", "open_database", "reading", "transaction"]

BUSY_TIMEOUT_S = 30.0
CACHE_KIB = 32 * 1024  # page cache per connection: a ceiling, not an allocation

_lock = threading.Lock()
_migrated: set[str] = set()


def _postgres_unavailable(target: DatabaseTarget) -> StoreError:
    try:
        import psycopg  # noqa: F401
    except ImportError:
        return StoreError(
            f"FLUVIAL_DATABASE_URL is a PostgreSQL URL ({target.url.split('@')[-1]!r}) "
            "but psycopg is not installed: pip install psycopg"
        )
    return StoreError(
        "the PostgreSQL store is not implemented in this release; "
        "unset FLUVIAL_DATABASE_URL to use the embedded SQLite store"
    )


def connect(target: DatabaseTarget | None = None) -> sqlite3.Connection:
    """A new connection to the store, with WAL, ``synchronous=NORMAL`` and a busy timeout.

    Creates the file (and its directory) if needed; does not migrate.
    """
    target = target or database_target()
    if target.dialect != "sqlite" or target.path is None:
        raise _postgres_unavailable(target)
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


def open_database(target: DatabaseTarget | None = None) -> sqlite3.Connection:
    """Connect, migrate the schema (once per process) and mark runs of dead drivers crashed."""
    from fluvial.store._recovery import recover_crashed_runs

    target = target or database_target()
    conn = connect(target)
    try:
        key = str(target.path)
        with _lock:
            if key not in _migrated:
                migrate(conn)
                _migrated.add(key)
        recover_crashed_runs(conn)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"cannot open the fluvial store at {target.path}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


@contextmanager
def reading(target: DatabaseTarget | None = None) -> Iterator[sqlite3.Connection]:
    """An opened connection for the read API, closed on exit."""
    conn = open_database(target)
    try:
        yield conn
    finally:
        conn.close()


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction: committed on success, rolled back on any error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def reset_caches() -> None:
    """Forget which databases this process has migrated (tests)."""
    with _lock:
        _migrated.clear()
