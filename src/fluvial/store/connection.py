"""Connections to the store: which database, opening it, write transactions.

:func:`database_target` parses ``FLUVIAL_DATABASE_URL`` (see :mod:`fluvial.settings`)
into a :class:`DatabaseTarget`. Every connection is in autocommit mode; writes go through :func:`transaction`,
which takes the write lock up front so concurrent writers queue instead of
failing on a lock upgrade. On SQLite that is ``BEGIN IMMEDIATE`` with a busy
timeout, in WAL mode with ``synchronous=NORMAL``: readers never block the
writer, and a crash loses at most the last batches, never the file. On
PostgreSQL (``FLUVIAL_DATABASE_URL=postgresql://...``, see
:mod:`fluvial.store.dialects`) it is ``BEGIN`` plus an advisory lock, bounded by
``lock_timeout``.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

from fluvial import settings
from fluvial._files import create_private
from fluvial._redact import redact_url
from fluvial.exceptions import StoreError
from fluvial.store import dialects
from fluvial.store.dialects import POSTGRESQL, dialect_of

if TYPE_CHECKING:
    from fluvial.store.dialects import PgConnection

__all__ = [
    "BUSY_TIMEOUT_S",
    "Connection",
    "DatabaseTarget",
    "begin_write",
    "connect",
    "database_errors",
    "database_key",
    "database_target",
    "database_url",
    "is_transient",
    "kept_open",
    "open_database",
    "reading",
    "rollback",
    "store_path",
    "transaction",
]


Connection: TypeAlias = "sqlite3.Connection | PgConnection"

BUSY_TIMEOUT_S = 30.0
CACHE_KIB = 32 * 1024  # page cache per connection: a ceiling, not an allocation
PAGE_SIZE = 16384  # bytes, for a database this process creates

_lock = threading.Lock()
_migrated: set[str] = set()


@dataclass(frozen=True)
class DatabaseTarget:
    """A parsed database URL: ``dialect`` is ``"sqlite"`` or ``"postgresql"``."""

    url: str
    dialect: str
    path: Path | None = None


def database_url() -> str:
    """The effective database URL (``sqlite:///$FLUVIAL_HOME/fluvial.db`` by default)."""
    return settings.get().database_url


def store_path() -> Path:
    """The SQLite file of the store.

    ``$FLUVIAL_HOME/fluvial.db`` unless ``FLUVIAL_DATABASE_URL`` names another
    SQLite file, in which case that file.
    """
    target = database_target()
    return target.path if target.path is not None else settings.get().home / "fluvial.db"


def database_target(url: str | None = None) -> DatabaseTarget:
    """Parse ``url`` (default: :func:`database_url`) into a :class:`DatabaseTarget`."""
    url = url if url is not None else database_url()
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise StoreError(
            f"FLUVIAL_DATABASE_URL {redact_url(url)!r} is not a URL; "
            "expected sqlite:////path/to/fluvial.db or postgresql://..."
        )
    if scheme == "sqlite":
        # sqlite:////abs/x.db -> "/abs/x.db"; sqlite:///rel.db -> "rel.db"
        path = rest[1:] if rest.startswith("/") else rest
        if path in ("", ":memory:"):
            raise StoreError(
                "an in-memory SQLite store cannot be shared by the writer thread and "
                "readers; give FLUVIAL_DATABASE_URL a file path"
            )
        return DatabaseTarget(url=url, dialect="sqlite", path=Path(path).expanduser())
    if scheme in ("postgresql", "postgres") or scheme.startswith("postgresql+"):
        return DatabaseTarget(url=url, dialect="postgresql")
    raise StoreError(
        f"unsupported database URL scheme {scheme!r} in {redact_url(url)!r}; "
        "use sqlite:// or postgresql://"
    )


def database_errors() -> tuple[type[BaseException], ...]:
    """The exception types a database call can raise (psycopg's only once imported)."""
    return (sqlite3.Error, *dialects.pg_errors())


def is_transient(exc: BaseException) -> bool:
    """Whether a write transaction that failed with ``exc`` may succeed if retried."""
    if isinstance(exc, sqlite3.OperationalError):
        return "locked" in str(exc)
    return dialects.pg_is_transient(exc)


def _where(target: DatabaseTarget) -> str:
    return str(target.path) if target.path is not None else dialects.redact(target.url)


def connect(target: DatabaseTarget | None = None) -> Connection:
    """A new autocommit connection to the store; does not migrate.

    SQLite: WAL, ``synchronous=NORMAL`` and a busy timeout; creates the file
    (and its directory) if needed, with 16 KiB pages. PostgreSQL: a ``lock_timeout`` as long.
    """
    target = target or database_target()
    if target.dialect == POSTGRESQL:
        return dialects.connect_postgres(target.url, BUSY_TIMEOUT_S)
    assert target.path is not None
    try:
        create_private(target.path)  # 0600 (and 0700 directories): its -wal/-shm follow
        conn = sqlite3.connect(
            target.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        _into_wal(conn)
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"cannot open the fluvial store at {target.path}: {exc}") from exc
    return conn


def _into_wal(conn: sqlite3.Connection) -> None:
    """WAL mode (and, for a new file, 16 KiB pages: fewer WAL frames, splits and checksums,
    ~12% less writer CPU per run; an existing file keeps its page size).

    Two processes or threads opening a brand-new file at once may both try to write its
    header: SQLite reports "database is locked" at once (its busy handler does not wait
    there), so that is retried for up to the busy timeout."""
    import time

    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            conn.execute(f"PRAGMA page_size = {PAGE_SIZE}")
            conn.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


def database_key(target: DatabaseTarget) -> str:
    """One string per database: its file, or its URL."""
    return target.url if target.path is None else str(target.path)


def open_database(target: DatabaseTarget | None = None) -> Connection:
    """Connect, and migrate the schema the first time this process opens the database.

    Nothing else is written: crash recovery runs once per process, apart
    (:func:`fluvial.store.recovery.recover_once`).
    """
    from fluvial.store.schema import migrate

    target = target or database_target()
    conn = connect(target)
    try:
        key = database_key(target)
        with _lock:
            if key not in _migrated:
                migrate(conn)
                _migrated.add(key)
    except database_errors() as exc:
        conn.close()
        raise StoreError(f"cannot open the fluvial store at {_where(target)}: {exc}") from exc
    except BaseException:
        conn.close()
        raise
    return conn


def begin_write(conn: Any) -> None:
    """Start a transaction that holds the store's write lock.

    SQLite: ``BEGIN IMMEDIATE``. PostgreSQL: ``BEGIN`` plus the store's advisory
    write lock. Either way one writer at a time, and readers are never blocked.
    """
    if dialect_of(conn) == POSTGRESQL:
        dialects.pg_begin_write(conn)
    else:
        conn.execute("BEGIN IMMEDIATE")


def rollback(conn: Any) -> None:
    """Roll back the open transaction (nothing to do on a lost PostgreSQL connection)."""
    if dialect_of(conn) == POSTGRESQL:
        dialects.pg_rollback(conn)
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


@contextmanager
def reading(target: DatabaseTarget | None = None) -> Iterator[Any]:
    """An opened connection for the read API, closed on exit.

    Reading never writes runs (no crash recovery here); the only write a
    connection may make is the schema's migration, once per process.
    """
    conn = open_database(target)
    try:
        yield conn
    finally:
        conn.close()


_kept_lock = threading.Lock()
_kept: dict[str, tuple[int, Connection]] = {}


@contextmanager
def kept_open(target: DatabaseTarget | None = None) -> Iterator[Any]:
    """A connection this process keeps open, for small reads made often.

    The admission path refreshes its limits once a second: through one
    connection per database and process, that is one ``SELECT`` and no
    connect, pragma or file open. Callers take turns (a lock is held while
    the connection is lent); a forked child opens its own; a connection that
    failed is closed and the next call opens a new one.
    """
    import os

    target = target or database_target()
    key = database_key(target)
    with _kept_lock:
        kept = _kept.get(key)
        if kept is None or kept[0] != os.getpid():
            conn = open_database(target)
            _kept[key] = (os.getpid(), conn)
        else:
            conn = kept[1]
        try:
            yield conn
        except database_errors() as exc:
            del _kept[key]
            _close_quietly(conn)
            raise StoreError(f"cannot read the fluvial store at {_where(target)}: {exc}") from exc


def _close_quietly(conn: Connection) -> None:
    try:
        conn.close()
    except Exception:
        pass


def reset_caches() -> None:
    """Forget which databases this process has migrated; close kept connections (tests)."""
    import os

    with _lock:
        _migrated.clear()
    with _kept_lock:
        for pid, conn in _kept.values():
            if pid == os.getpid():
                _close_quietly(conn)
        _kept.clear()
