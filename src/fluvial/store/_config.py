"""Where the store lives: environment settings, read at call time.

``FLUVIAL_STORE``         ``off``/``0``/``false``/``no`` turns recording off.
``FLUVIAL_HOME``          directory of the embedded database (default ``~/.fluvial``).
``FLUVIAL_DATABASE_URL``  ``sqlite:////abs/path.db``, ``sqlite:///relative.db`` or
                          ``postgresql://user:pass@host:5432/db`` (also ``postgres://``
                          and ``postgresql+psycopg://``; libpq query parameters such
                          as ``?sslmode=require`` or ``?options=-csearch_path%3Dteam``
                          pass through); overrides the file under ``FLUVIAL_HOME``.
``FLUVIAL_STORE_WRITER``  ``process`` (default): batches are committed by a writer
                          process; ``thread``: by a thread of the recording process.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fluvial.store._errors import StoreError

__all__ = [
    "DatabaseTarget",
    "database_target",
    "database_url",
    "store_enabled",
    "store_path",
    "writer_mode",
]

_OFF_VALUES = frozenset({"off", "0", "false", "no"})


def store_enabled() -> bool:
    """False when ``FLUVIAL_STORE`` is one of off/0/false/no (any case)."""
    return os.environ.get("FLUVIAL_STORE", "").strip().lower() not in _OFF_VALUES


def writer_mode() -> str:
    """``"process"`` or ``"thread"``: where the recorder's batches are committed."""
    mode = os.environ.get("FLUVIAL_STORE_WRITER", "").strip().lower() or "process"
    if mode not in ("process", "thread"):
        raise StoreError(f"FLUVIAL_STORE_WRITER must be 'process' or 'thread', not {mode!r}")
    return mode


def fluvial_home() -> Path:
    """``$FLUVIAL_HOME``, default ``~/.fluvial``."""
    home = os.environ.get("FLUVIAL_HOME")
    return Path(home).expanduser() if home else Path.home() / ".fluvial"


def store_path() -> Path:
    """The SQLite file of the store.

    ``$FLUVIAL_HOME/fluvial.db`` unless ``FLUVIAL_DATABASE_URL`` names another
    SQLite file, in which case that file.
    """
    target = database_target()
    return target.path if target.path is not None else fluvial_home() / "fluvial.db"


def database_url() -> str:
    """The effective database URL (``sqlite:///$FLUVIAL_HOME/fluvial.db`` by default)."""
    url = os.environ.get("FLUVIAL_DATABASE_URL", "").strip()
    return url or f"sqlite:///{fluvial_home() / 'fluvial.db'}"


@dataclass(frozen=True)
class DatabaseTarget:
    """A parsed database URL: ``dialect`` is ``"sqlite"`` or ``"postgresql"``."""

    url: str
    dialect: str
    path: Path | None = None


def database_target(url: str | None = None) -> DatabaseTarget:
    """Parse ``url`` (default: :func:`database_url`) into a :class:`DatabaseTarget`."""
    url = url if url is not None else database_url()
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep:
        raise StoreError(
            f"FLUVIAL_DATABASE_URL {url!r} is not a URL; "
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
        f"unsupported database URL scheme {scheme!r} in {url!r}; use sqlite:// or postgresql://"
    )
