"""``Worker``: polls the record, claims due runs, runs each in its own process.

Each poll (every ``poll_interval`` seconds): heartbeat (every
``heartbeat_interval``), one scheduler tick (``fluvial.scheduler``, when
installed), one reaping pass (:mod:`fluvial.workers._reaper`), signals to the
processes of runs being cancelled, then claims due runs up to ``limit``
running at once and starts a process for each
(:mod:`fluvial.workers._flow_process`). A process that exits leaves its run
final; if it did not (it was killed, it crashed), the worker records
``Crashed`` (or ``Cancelled``, when the run was being cancelled) and the run is
scheduled again if its deployment allows retries.

Stopping: the first SIGTERM/SIGINT stops claiming and lets running flows finish;
a second one hands the runs back (their processes get SIGTERM, then SIGKILL
after ``cancel_grace`` seconds; the runs go back to ``Scheduled`` for another
worker). A worker killed with SIGKILL takes its flow processes with it; other
workers' reapers mark its runs ``Crashed`` once its heartbeat lapses.

With ``api`` (a :class:`fluvial.store.remote.ApiClient`; ``fluvial worker start`` passes
one when ``FLUVIAL_API_URL`` is set) the worker opens no database: it registers, beats,
claims, learns of cancellations and settles its runs through the server's API (see
:mod:`fluvial.workers._record`), and its flow processes record through it too;
scheduling, automations and reaping are then the server's (its background loop).

With ``max_runs`` it stops (as after a first signal) once it has started that many
runs. ``clock`` (epoch seconds) decides what is due and when heartbeats lapse, so
tests need not wait for the wall clock.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from fluvial.workers import _reaper
from fluvial.workers._record import ApiRecord, DbRecord, WorkerIdentity

__all__ = ["Worker"]

logger = logging.getLogger("fluvial.worker")


@dataclass
class _Child:
    run_id: str
    process: subprocess.Popen
    started: float
    terminate_sent: float | None = None
    killed: bool = False
    cancelling: bool = False
    handing_back: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class Worker:
    """Claims and runs due flow runs of one work pool (or of some deployments)."""

    def __init__(
        self,
        pool: str | None = "default",
        *,
        limit: int | None = None,
        name: str | None = None,
        deployment_ids: Sequence[str] | None = None,
        poll_interval: float = 0.25,
        heartbeat_interval: float = 5.0,
        heartbeat_timeout: float = 30.0,
        cancel_grace: float = 10.0,
        run_once: bool = False,
        max_runs: int | None = None,
        schedule: bool = True,
        clock: Callable[[], float] = time.time,
        api: Any = None,
    ) -> None:
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 1):
            raise ValueError(f"worker limit must be an integer >= 1, got {limit!r}")
        for label, value in (("poll_interval", poll_interval),
                             ("heartbeat_interval", heartbeat_interval),
                             ("heartbeat_timeout", heartbeat_timeout)):
            if not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"worker {label} must be > 0, got {value!r}")
        if max_runs is not None and (isinstance(max_runs, bool) or not isinstance(max_runs, int)
                                     or max_runs < 1):
            raise ValueError(f"worker max_runs must be an integer >= 1, got {max_runs!r}")
        if pool is None and deployment_ids is None:
            raise ValueError("a worker needs a pool or deployment ids")
        self.pool = pool
        self.limit = limit
        self.id = str(uuid.uuid4())
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.deployment_ids = list(deployment_ids) if deployment_ids is not None else None
        self.poll_interval = poll_interval
        self.heartbeat_interval = heartbeat_interval
        self.heartbeat_timeout = heartbeat_timeout
        self.cancel_grace = cancel_grace
        self.run_once = run_once
        self.max_runs = max_runs
        self.started = 0
        self.schedule = schedule
        self._evaluator: Any = None
        self.clock = clock
        self.children: dict[str, _Child] = {}
        self.finished: list[str] = []
        self._stopping = False  # a plain flag: signal handlers set it (an Event could deadlock)
        self._hand_back = False
        self._signals = 0
        self._last_beat = float("-inf")
        self._conn: Any = None
        self.api = api
        self._record: Any = None
        self._spare: subprocess.Popen | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Run until stopped (signals, ``stop()``, or after one round with ``run_once``)."""
        if self.api is None:
            from fluvial.store.connection import open_database

            self._conn = open_database()
            self._record = DbRecord(self._conn)
        else:
            self._record = ApiRecord(self.api)
        restore = self._install_signals()
        registered = False
        try:
            self._register()
            registered = True
            logger.info("Worker %s (%s) polling pool %r", self.name, self.id, self.pool)
            while True:
                self._guarded_poll()
                if self.run_once:
                    self._drain()
                    break
                if self._stopping:
                    self._drain()
                    break
                sleep_unless_stopping(self, self.poll_interval)
        finally:
            restore()
            if registered:
                self._unregister()
            if self._evaluator is not None:
                self._evaluator.close()
            self._drop_spare()
            if self._conn is not None:
                self._conn.close()
            self._conn = None

    def _guarded_poll(self) -> None:
        """One poll; a database error (locked too long, a lost PostgreSQL connection) is
        logged and the next poll tries again, on a new connection if this one broke: the
        flows already running go on."""
        from fluvial.exceptions import ApiError
        from fluvial.store.connection import database_errors, open_database

        errors: tuple[type[BaseException], ...] = (ApiError, *database_errors())
        try:
            self.poll()
        except errors as exc:
            logger.warning("Worker %s: poll failed (%s); trying again", self.name, exc)
            if getattr(self._conn, "broken", False):
                try:
                    self._conn.close()
                except Exception:  # noqa: BLE001 - it is gone already
                    pass
                try:
                    self._conn = open_database()
                    self._record = DbRecord(self._conn)
                except Exception as again:  # noqa: BLE001 - the next poll tries again
                    logger.warning("Worker %s: cannot reconnect (%s)", self.name, again)
            sleep_unless_stopping(self, min(5.0, self.poll_interval * 4))

    def stop(self, hand_back: bool = False) -> None:
        """Stop claiming; with ``hand_back``, also give the running runs back."""
        if hand_back:
            self._hand_back = True
        self._stopping = True

    def _install_signals(self) -> Callable[[], None]:
        if threading.current_thread() is not threading.main_thread():
            return lambda: None

        def handler(signum: int, frame: Any) -> None:
            # flags only: no locks, no logging (the main thread may hold their locks)
            self._signals += 1
            if self._signals > 1:
                self._hand_back = True
            self._stopping = True

        old = {s: signal.signal(s, handler) for s in (signal.SIGTERM, signal.SIGINT)}

        def restore() -> None:
            for signum, previous in old.items():
                signal.signal(signum, previous)

        return restore

    @property
    def identity(self) -> WorkerIdentity:
        return WorkerIdentity.here(self.id, self.name, self.pool)

    def _register(self) -> None:
        now = self.clock()
        self._record.register(self.identity, now)
        self._last_beat = now

    def _unregister(self) -> None:
        try:
            self._record.unregister(self.id)
        except Exception:  # noqa: BLE001 - the reaper cleans up what remains
            logger.exception("Worker %s: could not unregister", self.name)

    def heartbeat(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        self._record.heartbeat(self.identity, now)
        self._last_beat = now

    # -- one poll ----------------------------------------------------------------------

    def poll(self) -> list[str]:
        """One round: heartbeat, tick, reap, cancel, collect, claim; the runs started."""
        now = self.clock()
        if now - self._last_beat >= self.heartbeat_interval:
            self.heartbeat(now)
        if self._conn is not None:  # through the API, the server does these
            if self.schedule and not self._stopping:
                self._tick(now)
                self._evaluate()
            _reaper.reap(self._conn, now, self.heartbeat_timeout, own_id=self.id)
        self._signal_cancelled()
        self._collect()
        if self._hand_back:
            self._terminate_all()
            return []
        if self._stopping and not self.run_once:
            return []
        started = self._claim(now)
        if not started and not self.run_once and not self._stopping:
            self._ensure_spare()  # between runs, not while one is starting
        return started

    def _tick(self, now: float) -> None:
        try:
            from fluvial.scheduler import run_scheduler_once  # type: ignore[import-not-found]
        except ImportError:
            return
        try:
            run_scheduler_once(self._conn, now=now, deployment_ids=self.deployment_ids)
        except Exception:  # noqa: BLE001 - scheduling trouble must not stop running runs
            logger.exception("Worker %s: scheduler tick failed", self.name)

    def _evaluate(self) -> None:
        """One pass of the automations evaluator (decisions are shared: see fluvial.evaluator)."""
        try:
            if self._evaluator is None:
                from fluvial.evaluator import Evaluator

                self._evaluator = Evaluator(clock=self.clock)
            self._evaluator.run_once()
        except Exception:  # noqa: BLE001 - automations trouble must not stop running runs
            logger.exception("Worker %s: automations evaluation failed", self.name)

    def _claim(self, now: float) -> list[str]:
        self._record.cancel_collisions(now, self.pool, self.deployment_ids)
        started = []
        while self.limit is None or len(self.children) < self.limit:
            if self.max_runs is not None and self.started >= self.max_runs:
                self._stopping = True  # enough: finish these and stop
                break
            run_id = self._record.claim(self.id, now, self.pool, self.deployment_ids)
            if run_id is None:
                break
            self._spawn(run_id)
            self.started += 1
            started.append(run_id)
        return started

    def _child_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("FLUVIAL_STORE_WRITER", "thread")  # no second process to start
        return env

    def _popen(self, arg: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, "-m", "fluvial.workers._flow_process", arg],
            env=self._child_env(), start_new_session=True,
            stdin=subprocess.PIPE if arg == "--spare" else subprocess.DEVNULL, text=True,
        )

    def _ensure_spare(self) -> None:
        if self._spare is None or self._spare.poll() is not None:
            try:
                self._spare = self._popen("--spare")
            except OSError:
                self._spare = None

    def _drop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is not None and spare.poll() is None:
            try:
                assert spare.stdin is not None
                spare.stdin.close()  # no run: it exits
                spare.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                spare.kill()

    def _take_spare(self, run_id: str) -> subprocess.Popen | None:
        spare, self._spare = self._spare, None
        if spare is None or spare.poll() is not None or spare.stdin is None:
            return None
        try:
            spare.stdin.write(run_id + "\n")
            spare.stdin.close()
        except OSError:
            return None
        return spare

    def _spawn(self, run_id: str) -> None:
        process = self._take_spare(run_id)
        try:
            if process is None:
                process = self._popen(run_id)
        except OSError as exc:
            self._record.crash(run_id, f"worker {self.name} could not start a process: {exc}")
            return
        self.children[run_id] = _Child(run_id, process, time.monotonic())
        logger.info("Worker %s: started flow run %s (pid %d)", self.name, run_id, process.pid)

    # -- children ----------------------------------------------------------------------

    def _signal_cancelled(self) -> None:
        if not self.children:
            return
        for run_id in self._record.cancelling(self.id):
            child = self.children.get(run_id)
            if child is not None:
                child.cancelling = True
                self._terminate(child)
        self._escalate()

    def _terminate(self, child: _Child) -> None:
        if child.terminate_sent is None and child.process.poll() is None:
            logger.info("Worker %s: stopping flow run %s (SIGTERM)", self.name, child.run_id)
            child.process.terminate()
            child.terminate_sent = time.monotonic()

    def _escalate(self) -> None:
        for child in self.children.values():
            if (child.terminate_sent is not None and not child.killed
                    and time.monotonic() - child.terminate_sent >= self.cancel_grace
                    and child.process.poll() is None):
                logger.info("Worker %s: killing flow run %s (SIGKILL)", self.name, child.run_id)
                child.process.kill()
                child.killed = True

    def _terminate_all(self) -> None:
        for child in self.children.values():
            child.handing_back = not child.cancelling
            self._terminate(child)
        self._escalate()

    def _collect(self) -> None:
        for run_id, child in list(self.children.items()):
            code = child.process.poll()
            if code is None:
                continue
            self._settle(child, code)  # first: if it fails, the next poll settles it
            del self.children[run_id]
            self.finished.append(run_id)

    def _settle(self, child: _Child, code: int) -> None:
        """Record what a process that exited left unsaid."""
        run_id = child.run_id
        self._record.settle(run_id, code, child.cancelling, child.handing_back, self.name,
                            self.clock())
        logger.info("Worker %s: flow run %s ended (exit status %d)", self.name, run_id, code)

    def _drain(self) -> None:
        """Wait for the running processes to end (handing them back if told to)."""
        if self.children:
            logger.info("Worker %s: stopping; waiting for %d run(s) to finish (signal again "
                        "to hand them back)", self.name, len(self.children))
        from fluvial.exceptions import ApiError

        while self.children:
            if self._hand_back:
                self._terminate_all()
            now = self.clock()
            try:
                if now - self._last_beat >= self.heartbeat_interval:
                    self.heartbeat(now)
                self._signal_cancelled()
                self._collect()
            except ApiError as exc:  # the server restarts: the runs go on, ask again
                logger.warning("Worker %s: %s; trying again", self.name, exc)
                time.sleep(min(self.poll_interval * 4, 1.0))
                continue
            if self.children:
                time.sleep(min(self.poll_interval, 0.1))


def sleep_unless_stopping(worker: Any, seconds: float) -> None:
    """Sleep up to ``seconds``, waking early once ``worker`` is stopping."""
    deadline = time.monotonic() + seconds
    while not worker._stopping:
        left = deadline - time.monotonic()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))
