"""Committing batches: one transaction per batch, transient failures retried.

Shared by the writer process (:mod:`fluvial.store._writer_process`) and the
in-thread writer the recorder falls back to when no process can be started.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from fluvial.store._batch import write_events
from fluvial.store._config import DatabaseTarget
from fluvial.store._db import Connection, connect, is_transient
from fluvial.store._errors import StoreError
from fluvial.store._txn import transaction

__all__ = ["RETRIES", "BatchWriter"]

logger = logging.getLogger("fluvial.store")

RETRIES = 3


class BatchWriter:
    """Writes batches of recorder events for the driver ``pid`` on ``hostname``."""

    def __init__(self, target: DatabaseTarget, conn: Connection, pid: int, hostname: str) -> None:
        self.target = target
        self.conn = conn
        self.pid = pid
        self.hostname = hostname

    def commit(self, events: Sequence[tuple]) -> tuple[int, BaseException | None]:
        """Commit ``events`` in one transaction: ``(skipped, None)``, or ``(0, error)``.

        On an error nothing of the batch is written, and a warning is logged.
        """
        for attempt in range(RETRIES):
            try:
                with transaction(self.conn):
                    skipped = write_events(self.conn, events, self.pid, self.hostname)
            except Exception as exc:  # never let the writer die
                if attempt + 1 < RETRIES and is_transient(exc) and self._usable():
                    continue
                logger.warning(
                    "fluvial store: dropped a batch of %d events: %s", len(events), exc
                )
                return 0, exc
            return skipped, None
        raise AssertionError("unreachable")  # pragma: no cover

    def _usable(self) -> bool:
        """Whether the connection can take a retry, reconnecting if the server dropped it."""
        if not getattr(self.conn, "broken", False):
            return True
        try:
            conn = connect(self.target)
        except StoreError as exc:
            logger.warning("fluvial store: cannot reconnect: %s", exc)
            return False
        self.conn.close()
        self.conn = conn
        return True

    def close(self) -> None:
        self.conn.close()
