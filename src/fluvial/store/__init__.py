"""fluvial.store: the run record, an embedded SQLite database by default.

``FLUVIAL_DATABASE_URL=postgresql://user:pass@host/db`` puts it in PostgreSQL
instead, for a team sharing one record (``pip install 'fluvial[postgres]'``);
everything below behaves the same on both. Settings come from
:mod:`fluvial.settings`; errors are :class:`fluvial.exceptions.StoreError`.

The engine records through :func:`get_recorder` (hot-path calls only append to
an in-memory queue; a background thread ships batches to a writer process that
commits them, or commits them itself with ``FLUVIAL_STORE_WRITER=thread``). The
CLI and any UI read through :mod:`fluvial.store.queries`. Tag limits are set
through :mod:`fluvial.concurrency` (the store's ``_limits`` is private).

    get_recorder() -> Recorder | None   process-wide; None when FLUVIAL_STORE=off; writes
                                         through the server when FLUVIAL_API_URL is set
    recover() -> list[str]               crash recovery, once per process (CLI start)
    store_path() -> Path                 $FLUVIAL_HOME/fluvial.db (~/.fluvial by default)
    database_url() -> str                FLUVIAL_DATABASE_URL, or the SQLite file above

The package, by role (each module imports only those above it):

    dialects     where SQLite and PostgreSQL differ; PostgreSQL connections
                 (the only importer of psycopg)
    connection   which database (DatabaseTarget), connect/open, write transactions
    schema       the migrations, an append-only ordered list (MIGRATIONS), and
                 FINAL_STATE_TYPES / OPEN_RUN
    rows         the SQL that writes run rows and states (writer and recovery)
    recovery     crash recovery: open runs of dead drivers marked CRASHED
    writer/      committing batches: batch (events -> rows, one transaction
                 each), process (the writer process), wire (the pipe's frames)
    recorder     the hot-path queue, its drain thread, the writer process's lifecycle
    remote       the recorder through a fluvial server (FLUVIAL_API_URL): HTTP batches,
                 journal, applied once (writer/received on the server's side)
    queries      the read API and its frozen records
    catalog      variables, blocks, artifacts and assets, as stored
    _limits      the concurrency_limits table (private; see fluvial.concurrency)
"""

from __future__ import annotations

import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from fluvial import settings
from fluvial._redact import RedactingFilter
from fluvial.exceptions import AmbiguousRunIdError, RunNotFoundError, StoreError
from fluvial.store.connection import database_target, database_url, store_path

if TYPE_CHECKING:
    from fluvial.store.recorder import Recorder

# The store's warnings quote database errors and URLs: never a password.
logging.getLogger("fluvial.store").addFilter(RedactingFilter())

__all__ = [
    "AmbiguousRunIdError",
    "Recorder",
    "RunNotFoundError",
    "StoreError",
    "database_url",
    "get_recorder",
    "recover",
    "store_enabled",
    "store_path",
]

_instance: Recorder | None = None
_instance_key: str | None = None
_lock = threading.Lock()


def __getattr__(name: str) -> Any:
    # The recorder (sqlite3, socket, logging) is imported on first use: `import fluvial` stays fast.
    if name == "Recorder":
        from fluvial.store.recorder import Recorder

        return Recorder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def store_enabled() -> bool:
    """False when ``FLUVIAL_STORE`` is one of off/0/false/no (any case)."""
    return settings.get().store_enabled


def recover() -> list[str]:
    """Mark this host's runs whose driver died CRASHED, once per process; their ids.

    The recorder does this when it opens, and the CLI when it starts; reads never do.
    """
    from fluvial.store.recovery import recover_once

    return recover_once()


def get_recorder() -> Recorder | None:
    """The process-wide recorder, opened on first use; None when ``FLUVIAL_STORE`` is off.

    Settings are read at call time: if ``FLUVIAL_HOME`` or ``FLUVIAL_DATABASE_URL``
    changed since the recorder was opened, the old one is closed and a new one opened.
    Raises ``StoreError`` if the store cannot be opened.
    """
    global _instance, _instance_key
    current = settings.get()
    if not current.store_enabled:
        return None
    key = current.database_url if current.api_url is None else f"api:{current.api_url}"
    recorder = _instance
    if recorder is not None and _instance_key == key and not recorder.closed:
        return recorder
    with _lock:
        if _instance is not None and (_instance_key != key or _instance.closed):
            _instance.close()
            _instance = None
        if _instance is None:
            if current.api_url is not None:
                _instance = _remote_recorder(current.api_url, current.api_token)
            else:
                from fluvial.store.recorder import Recorder

                _instance = Recorder(database_target(key))
            _instance_key = key
        return _instance


_refused: dict[tuple[str, str | None], BaseException] = {}


def _remote_recorder(url: str, token: str | None) -> Recorder:
    """A recorder that writes through the server at ``url``; a refused token is remembered
    (asked again only when the URL or the token changes)."""
    from fluvial.exceptions import ApiAuthError
    from fluvial.store.remote import ApiClient, RemoteRecorder

    refused = _refused.get((url, token))
    if refused is not None:
        raise refused
    try:
        return RemoteRecorder(ApiClient(url, token))
    except ApiAuthError as exc:
        _refused[(url, token)] = exc
        raise


def _reset_for_tests() -> None:
    """Close the singleton recorder and forget per-process caches."""
    global _instance, _instance_key
    from fluvial.store.connection import reset_caches
    from fluvial.store.recorder import _replayed
    from fluvial.store.recovery import reset

    reset()
    _replayed.clear()
    _refused.clear()
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
