"""What the server runs besides answering requests: the scheduler tick, the automations
evaluator, and the reaper (runs of workers whose heartbeat lapsed are marked ``Crashed``:
workers that go through the API do not reap, the server does it for them).

Both are the same code workers run, and both decide through unique keys in the record,
so a server running them beside any number of workers never doubles a run or a firing.
"""

from __future__ import annotations

import logging
import threading
import time

__all__ = ["Background"]

logger = logging.getLogger("fluvial.server")


class Background:
    """A daemon thread that ticks the scheduler and evaluates automations every ``interval``."""

    def __init__(self, interval: float = 0.5, schedule: bool = True,
                 heartbeat_timeout: float = 30.0) -> None:
        self.interval = interval
        self.heartbeat_timeout = heartbeat_timeout
        self.schedule = schedule
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fluvial-server-loop", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        from fluvial.evaluator import Evaluator
        from fluvial.store.connection import open_database

        evaluator = Evaluator()
        conn = open_database()
        try:
            while not self._stop.is_set():
                if self.schedule:
                    try:
                        from fluvial.scheduler import run_scheduler_once

                        run_scheduler_once(conn, now=time.time())
                    except Exception:  # noqa: BLE001 - keep serving; say what went wrong
                        logger.exception("scheduler tick failed")
                try:
                    from fluvial.workers._reaper import reap

                    reap(conn, time.time(), self.heartbeat_timeout)
                except Exception:  # noqa: BLE001
                    logger.exception("reaping lapsed workers failed")
                try:
                    evaluator.run_once()
                except Exception:  # noqa: BLE001
                    logger.exception("automations evaluation failed")
                self._stop.wait(self.interval)
        finally:
            evaluator.close()
            conn.close()
