"""``Scheduler``: run ticks in a loop, waking at the next fire time, on an injectable clock.

    scheduler = Scheduler(clock=time.time, poll_interval=5.0)
    scheduler.run_once()                 # one tick now (what a worker's poll calls)
    scheduler.run(stop=threading.Event())  # until stop is set

Between ticks it sleeps until the earliest stored next fire time, or at most
``poll_interval`` seconds (new deployments, resumed ones), whichever comes first;
so a run is created within a few milliseconds of its fire time, not a poll later.
Tests pass a fake ``clock`` (and ``sleep``) and never wait for the wall clock.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from fluvial.scheduler._tick import TickSummary, run_scheduler_once

__all__ = ["Scheduler"]

logger = logging.getLogger("fluvial.scheduler")

# the next time to wake for; a due time that is held (overlap="buffer_one") is
# looked at again a poll later, not in a busy loop
_NEXT_DUE = """
SELECT min(s.next_fire_time)
FROM deployment_schedules s JOIN deployments d ON d.id = s.deployment_id
WHERE s.active = 1 AND d.paused = 0 AND s.next_fire_time > ?
"""


class Scheduler:
    """Ticks of :func:`run_scheduler_once` on one store connection, paced by ``clock``."""

    def __init__(
        self,
        conn: Any = None,
        *,
        clock: Callable[[], float] = time.time,
        poll_interval: float = 5.0,
        deployment_ids: Iterable[str] | None = None,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError(f"Scheduler: poll_interval must be positive, got {poll_interval!r}")
        self._conn = conn
        self._owned = conn is None
        self.clock = clock
        self.poll_interval = poll_interval
        self.deployment_ids = None if deployment_ids is None else [str(d) for d in deployment_ids]

    def _connection(self) -> Any:
        if self._conn is None:
            from fluvial.store.connection import open_database

            self._conn = open_database()
        return self._conn

    def run_once(self) -> TickSummary:
        """One tick as of ``clock()``."""
        return run_scheduler_once(self._connection(), self.clock(),
                                  deployment_ids=self.deployment_ids)

    def seconds_until_due(self) -> float:
        """How long until the earliest next fire time, capped at ``poll_interval``."""
        now = self.clock()
        row = self._connection().execute(_NEXT_DUE, (now,)).fetchone()
        wait = self.poll_interval
        if row is not None and row[0] is not None:
            wait = min(wait, row[0] - now)
        return max(0.0, wait)

    def run(self, stop: threading.Event | None = None,
            sleep: Callable[[float], Any] | None = None, max_ticks: int | None = None) -> None:
        """Tick until ``stop`` is set (or ``max_ticks`` ticks); errors are logged, not raised."""
        stop = stop or threading.Event()
        wait = sleep or stop.wait
        ticks = 0
        while not stop.is_set() and (max_ticks is None or ticks < max_ticks):
            try:
                self.run_once()
                delay = self.seconds_until_due()
            except Exception:
                logger.exception("scheduler tick failed; trying again in %.1fs",
                                 self.poll_interval)
                delay = self.poll_interval
            ticks += 1
            wait(delay)

    def close(self) -> None:
        if self._owned and self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> Scheduler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
