"""``fluvial.task_worker.serve(*tasks, limit=10)``: run background task runs (``Task.delay``).

A task worker claims queued runs of the tasks it serves (matched by task key:
``module.qualname`` of the function), runs each in one of ``limit`` threads with
the task engine (retries, timeouts, caching, hooks as for any task run), and
stores the final state with its result for the caller's future. It heartbeats in
the ``workers`` table like a flow worker; if it stops heartbeating, a reaper
gives its running rows back to the queue. SIGTERM/SIGINT: stop claiming, finish
the runs in hand, exit. ``fluvial task serve path.py:task ...`` does the same
from the command line.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future as ThreadFuture
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fluvial.workers._worker import sleep_unless_stopping as _sleep

__all__ = ["TaskWorker", "serve"]

logger = logging.getLogger("fluvial.worker")


class TaskWorker:
    """Serves background runs of ``tasks``; ``start()`` blocks until stopped."""

    def __init__(self, *tasks: Any, limit: int | None = 10, poll_interval: float = 0.1,
                 heartbeat_interval: float = 5.0, heartbeat_timeout: float = 30.0,
                 run_once: bool = False, clock: Callable[[], float] = time.time) -> None:
        from fluvial.tasks import Task

        if not tasks:
            raise ValueError("a task worker needs at least one task")
        for task in tasks:
            if not isinstance(task, Task):
                raise TypeError(f"task workers serve @task objects, got {task!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 1):
            raise ValueError(f"task worker limit must be an integer >= 1, got {limit!r}")
        self.tasks = {task.task_key: task for task in tasks}
        self.limit = limit or 10
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.run_once = run_once
        self.clock = clock
        self.id = str(uuid.uuid4())
        self._stopping = False  # a plain flag: signal handlers set it (an Event could deadlock)
        self._running: dict[str, ThreadFuture] = {}
        self._last_beat = float("-inf")
        self.finished = 0

    def stop(self) -> None:
        self._stopping = True

    def start(self) -> None:
        from fluvial.store.connection import database_errors, open_database, transaction

        conn = open_database()
        restore = self._install_signals()
        pool = ThreadPoolExecutor(self.limit, thread_name_prefix="fluvial-task-worker")
        now = self.clock()
        with transaction(conn):
            conn.execute(
                "INSERT INTO workers (id, name, work_pool, hostname, pid, heartbeat, started) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (self.id, f"tasks-{socket.gethostname()}-{os.getpid()}", "(task worker)",
                 socket.gethostname(), os.getpid(), now, now))
        names = ", ".join(sorted(t.name for t in self.tasks.values()))
        logger.info("Task worker %s serving %s", self.id, names)
        try:
            while True:
                try:
                    self._poll(conn, pool)
                except database_errors() as exc:  # locked too long, a lost connection
                    logger.warning("Task worker %s: poll failed (%s); trying again", self.id, exc)
                    if getattr(conn, "broken", False):
                        conn = _reconnect(conn)
                    _sleep(self, min(5.0, self.poll_interval * 4))
                if self.run_once and not self._running:
                    break
                if self._stopping:
                    break
                _sleep(self, self.poll_interval)
            while self._running:  # finish what is in hand
                self._collect(conn)
                time.sleep(0.05)
        finally:
            restore()
            pool.shutdown(wait=True)
            with transaction(conn):
                conn.execute("DELETE FROM workers WHERE id = ?", (self.id,))
            conn.close()

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None
        def handler(signum: int, frame: Any) -> None:
            self._stopping = True  # a flag only: no locks in a signal handler

        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for signum, previous in old.items():
                signal.signal(signum, previous)

        return restore

    def _poll(self, conn: Any, pool: ThreadPoolExecutor) -> None:
        from fluvial.store.connection import transaction
        from fluvial.workers._reaper import reap
        from fluvial.workers._task_queue import claim_task_run

        now = self.clock()
        if now - self._last_beat >= self.heartbeat_interval:
            with transaction(conn):
                conn.execute("UPDATE workers SET heartbeat = ? WHERE id = ?", (now, self.id))
            self._last_beat = now
        reap(conn, now, self.heartbeat_timeout, own_id=self.id)
        self._collect(conn)
        while not self._stopping and len(self._running) < self.limit:
            claimed = claim_task_run(conn, self.id, list(self.tasks))
            if claimed is None:
                break
            run_id, key, payload = claimed
            self._running[run_id] = pool.submit(self._run, key, payload)

    def _run(self, key: str, payload: str) -> Any:
        from fluvial.states import Failed
        from fluvial.workers._task_queue import _loads

        task = self.tasks[key]
        try:
            args, kwargs = _loads(payload)
        except Exception as exc:  # noqa: BLE001 - a payload this process cannot read
            return Failed(exc, f"task {task.name!r}: cannot read the queued arguments: {exc}")
        return task(*args, return_state=True, **kwargs)

    def _collect(self, conn: Any) -> None:
        from fluvial.states import Crashed
        from fluvial.workers._task_queue import finish_task_run

        for run_id, future in list(self._running.items()):
            if not future.done():
                continue
            del self._running[run_id]
            exc = future.exception()
            state = Crashed(exc) if exc is not None else future.result()
            finish_task_run(conn, run_id, state)
            self.finished += 1


def _reconnect(conn: Any) -> Any:
    from fluvial.store.connection import open_database

    try:
        conn.close()
    except Exception:  # noqa: BLE001 - it is gone already
        pass
    try:
        return open_database()
    except Exception as exc:  # noqa: BLE001 - the next poll tries again
        logger.warning("Task worker: cannot reconnect (%s)", exc)
        return conn


def serve(*tasks: Any, limit: int | None = 10, **options: Any) -> None:
    """Run background runs of ``tasks`` (queued with ``task.delay(...)``) until stopped."""
    TaskWorker(*tasks, limit=limit, **options).start()

