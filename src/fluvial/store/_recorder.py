"""The recorder: the engine's hot-path handle on the store.

Each recording method builds one tuple and appends it to a ``collections.deque``
(thread-safe, lock-free in CPython): no I/O, no locks, no formatting. A daemon
writer thread drains the deque every ``interval`` seconds, or as soon as it
holds ``wake_at`` events, and commits each batch of at most ``max_batch``
events in one transaction, so a reader never sees half a batch.

``flush()`` appends a marker and waits until the writer has committed every
event before it. After ``close()`` (run at exit) further events are discarded.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any
from uuid import UUID

from fluvial.store._batch import FLOW_RUN, HEARTBEAT, LOG, STATE, TASK_RUN, write_events
from fluvial.store._config import DatabaseTarget, database_target
from fluvial.store._db import BUSY_TIMEOUT_S, Connection, connect, is_transient, open_database
from fluvial.store._errors import StoreError
from fluvial.store._txn import transaction

__all__ = ["Recorder"]

logger = logging.getLogger("fluvial.store")

_RETRIES = 3


class _Flush:
    """A marker in the queue: set once every event before it is committed."""

    __slots__ = ("done", "error")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None


class Recorder:
    """Records runs, states and logs into the store from a background writer thread."""

    def __init__(
        self,
        target: DatabaseTarget | None = None,
        *,
        interval: float = 0.1,
        max_batch: int = 20_000,
        wake_at: int = 10_000,
    ) -> None:
        if interval <= 0:
            raise ValueError("interval must be greater than 0")
        if max_batch < 1:
            raise ValueError("max_batch must be at least 1")
        if wake_at < 1:
            raise ValueError("wake_at must be at least 1")
        self.target = target or database_target()
        self._conn: Connection = open_database(self.target)  # errors surface here
        self._interval = interval
        self._max_batch = max_batch
        self._wake_at = wake_at
        self._queue: deque[Any] = deque()
        self._wake = threading.Event()
        self._stopping = False
        self._closed = False
        self._pid = os.getpid()
        self._hostname = socket.gethostname()
        self.batches_committed = 0
        self.events_committed = 0
        self.events_dropped = 0
        self._thread = threading.Thread(target=self._run, name="fluvial-store-writer", daemon=True)
        self._thread.start()
        atexit.register(self.close)

    # -- hot path: one tuple, one append -------------------------------------------------

    def flow_run_created(
        self,
        id: UUID,
        name: str,
        flow_name: str,
        parameters: dict,
        tags: Iterable[str],
        parent_task_run_id: UUID | None,
        ts: float,
    ) -> None:
        q = self._queue
        q.append((FLOW_RUN, id, name, flow_name, parameters, tags, parent_task_run_id, ts))
        if len(q) == self._wake_at:
            self._wake.set()

    def task_run_created(
        self,
        id: UUID,
        flow_run_id: UUID | None,
        name: str,
        task_key: str,
        tags: Iterable[str],
        ts: float,
    ) -> None:
        q = self._queue
        q.append((TASK_RUN, id, flow_run_id, name, task_key, tags, ts))
        if len(q) == self._wake_at:
            self._wake.set()

    def state(
        self,
        run_id: UUID,
        type: str,
        name: str,
        message: str | None,
        ts: float,
        result_location: str | None = None,
    ) -> None:
        q = self._queue
        q.append((STATE, run_id, type, name, message, ts, result_location))
        if len(q) == self._wake_at:
            self._wake.set()

    def log(self, run_id: UUID | None, level: int, message: str, ts: float) -> None:
        q = self._queue
        q.append((LOG, run_id, level, message, ts))
        if len(q) == self._wake_at:
            self._wake.set()

    def heartbeat(self, flow_run_id: UUID) -> None:
        self._queue.append((HEARTBEAT, flow_run_id, time.time()))

    # -- control ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.target.url

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def pending(self) -> int:
        """Events appended but not yet taken by the writer."""
        return len(self._queue)

    def flush(self, timeout: float | None = None) -> None:
        """Block until every event appended so far is committed.

        Raises ``TimeoutError`` after ``timeout`` seconds, ``StoreError`` if a batch
        it waited for could not be written, ``RuntimeError`` after ``close()``.
        """
        if self._closed or not self._thread.is_alive():
            raise RuntimeError("flush() on a closed recorder")
        marker = _Flush()
        self._queue.append(marker)
        self._wake.set()
        if not marker.done.wait(timeout):
            raise TimeoutError(f"the store writer did not commit within {timeout} s")
        if marker.error is not None:
            raise StoreError(f"events could not be written: {marker.error}") from marker.error

    def close(self) -> None:
        """Flush, stop the writer thread and release the database. Idempotent."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        self._stopping = True
        self._wake.set()
        self._thread.join(timeout=BUSY_TIMEOUT_S * _RETRIES + 5)
        self._queue = deque(maxlen=0)  # later events are discarded, not kept forever

    def _forget_after_fork(self) -> None:
        """In a forked child: the writer thread is gone; record nothing, write nothing."""
        self._closed = True
        self._queue = deque(maxlen=0)
        atexit.unregister(self.close)
        forget = getattr(self._conn, "forget_after_fork", None)
        if forget is not None:  # PostgreSQL: the socket is the parent's
            forget()

    # -- writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        queue = self._queue
        try:
            while True:
                self._wake.wait(self._interval)
                self._wake.clear()
                while queue:
                    self._write_batch(queue)
                if self._stopping:
                    break
        finally:
            self._conn.close()

    def _write_batch(self, queue: deque[Any]) -> None:
        events: list[tuple] = []
        markers: list[_Flush] = []
        popleft = queue.popleft
        for _ in range(self._max_batch):
            try:
                item = popleft()
            except IndexError:
                break
            if type(item) is _Flush:
                markers.append(item)
            else:
                events.append(item)
        error: BaseException | None = None
        if events:
            error = self._commit(events)
        for marker in markers:
            marker.error = error
            marker.done.set()

    def _commit(self, events: list[tuple]) -> BaseException | None:
        for attempt in range(_RETRIES):
            try:
                with transaction(self._conn):
                    skipped = write_events(self._conn, events, self._pid, self._hostname)
            except Exception as exc:  # never let the writer thread die
                if attempt + 1 < _RETRIES and is_transient(exc) and self._usable():
                    continue
                return self._dropped(events, exc)
            self.batches_committed += 1
            self.events_committed += len(events) - skipped
            self.events_dropped += skipped
            return None
        return None  # pragma: no cover

    def _usable(self) -> bool:
        """Whether the connection can take a retry, reconnecting if the server dropped it."""
        if not getattr(self._conn, "broken", False):
            return True
        try:
            conn = connect(self.target)
        except StoreError as exc:
            logger.warning("fluvial store: cannot reconnect: %s", exc)
            return False
        self._conn.close()
        self._conn = conn
        return True

    def _dropped(self, events: list[tuple], exc: BaseException) -> BaseException:
        self.events_dropped += len(events)
        logger.warning("fluvial store: dropped a batch of %d events: %s", len(events), exc)
        return exc
