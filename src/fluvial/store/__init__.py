"""fluvial.store: the run record, an embedded SQLite database by default.

``FLUVIAL_DATABASE_URL=postgresql://user:pass@host/db`` puts it in PostgreSQL
instead, for a team sharing one record (``pip install 'fluvial[postgres]'``);
everything below behaves the same on both.

The engine records through :func:`get_recorder` (hot-path calls only append to
an in-memory queue; a background thread ships batches to a writer process that
commits them, or commits them itself with ``FLUVIAL_STORE_WRITER=thread``). The CLI and any UI
read through :mod:`fluvial.store.queries`; tag limits live in
:mod:`fluvial.store.limits`.

    get_recorder() -> Recorder | None   process-wide; None when FLUVIAL_STORE=off
    store_path() -> Path                 $FLUVIAL_HOME/fluvial.db (~/.fluvial by default)
    database_url() -> str                FLUVIAL_DATABASE_URL, or the SQLite file above

Modules: ``_config`` (settings), ``_schema`` (migrations), ``_db`` (connections),
``_txn`` (write transactions), ``_sql`` (where the two SQL dialects differ),
``_pg`` (PostgreSQL connections, the only importer of psycopg),
``_recovery`` (crashed drivers), ``_batch``/``_writes`` (the writer's SQL),
``_recorder`` (the hot-path queue and drain thread), ``_wire`` (the pipe's
frames), ``_writer``/``_writer_process`` (committing batches, in the writer process).
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Any

from fluvial.store._config import database_target, database_url, store_enabled, store_path
from fluvial.store._errors import AmbiguousRunIdError, RunNotFoundError, StoreError

if TYPE_CHECKING:
    from fluvial.store._recorder import Recorder

__all__ = [
    "AmbiguousRunIdError",
    "Recorder",
    "RunNotFoundError",
    "StoreError",
    "database_url",
    "get_recorder",
    "store_enabled",
    "store_path",
]

_instance: Recorder | None = None
_instance_key: tuple[str | None, str | None] | None = None
_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    # The recorder (sqlite3, socket, logging) is imported on first use: `import fluvial` stays fast.
    if name == "Recorder":
        from fluvial.store._recorder import Recorder

        return Recorder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _settings_key() -> tuple[str | None, str | None]:
    return os.environ.get("FLUVIAL_DATABASE_URL"), os.environ.get("FLUVIAL_HOME")


def get_recorder() -> Recorder | None:
    """The process-wide recorder, opened on first use; None when ``FLUVIAL_STORE`` is off.

    Settings are read at call time: if ``FLUVIAL_HOME`` or ``FLUVIAL_DATABASE_URL``
    changed since the recorder was opened, the old one is closed and a new one opened.
    Raises ``StoreError`` if the store cannot be opened.
    """
    global _instance, _instance_key
    if not store_enabled():
        return None
    key = _settings_key()
    recorder = _instance
    if recorder is not None and _instance_key == key and not recorder.closed:
        return recorder
    with _lock:
        if _instance is not None and (_instance_key != key or _instance.closed):
            _instance.close()
            _instance = None
        if _instance is None:
            from fluvial.store._recorder import Recorder

            _instance = Recorder(database_target())
            _instance_key = key
        return _instance


def _reset_for_tests() -> None:
    """Close the singleton recorder and forget per-process caches."""
    global _instance, _instance_key
    from fluvial.store._db import reset_caches

    with _lock:
        if _instance is not None:
            _instance.close()
        _instance = None
        _instance_key = None
    reset_caches()


def _after_fork_in_child() -> None:
    global _instance, _instance_key, _lock
    if _instance is not None:
        _instance._forget_after_fork()
    _instance = None
    _instance_key = None
    _lock = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
