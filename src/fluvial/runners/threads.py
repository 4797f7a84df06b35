"""``ThreadPoolTaskRunner``: task runs on a pool of threads in this process (the default).

The pool is a ``concurrent.futures.ThreadPoolExecutor``, but the runner does not hand
it one work item per task run. Ready runs go on a deque; the runner keeps at most
``max_workers`` *drain loops* in the executor, each popping and running ready runs
until the deque is empty. That is as fair as one item per run (every idle worker
takes the next run) at a fraction of the cost, and because a run only enters the deque
once its upstreams are done, no worker ever blocks on an upstream: a pool of one
thread runs a chain of any length. A task that itself waits on a future (a task that
submits tasks and collects them) runs other ready work in its thread while it waits,
so nested submission works even on a pool of one.
"""

from __future__ import annotations

import os
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from fluvial.context import FlowRunContext, _flow_run
from fluvial.futures import Future
from fluvial.futures._base import worker_thread
from fluvial.runners.base import LocalTaskRunner, checked_max_workers
from fluvial.worker.entry import run_in_worker

if TYPE_CHECKING:
    from fluvial.runs import Submission

__all__ = ["ThreadPoolTaskRunner", "default_runner"]

_HELP_POLL = 0.01  # seconds a waiting pool thread sleeps before looking for ready work


def _default_workers() -> int:
    return min(32, (os.cpu_count() or 1) + 4)


class ThreadPoolTaskRunner(LocalTaskRunner):
    """Run tasks on ``max_workers`` threads (default: ``min(32, cpu_count + 4)``)."""

    def __init__(self, max_workers: int | None = None, *,
                 max_in_flight: int | None = None) -> None:
        super().__init__(max_in_flight)
        self.max_workers = checked_max_workers(max_workers, _default_workers())
        self._ready: deque[tuple[Submission, Future, FlowRunContext | None]] = deque()
        self._lock = threading.Lock()
        self._active = 0
        self._executor: ThreadPoolExecutor | None = None

    def duplicate(self) -> ThreadPoolTaskRunner:
        return ThreadPoolTaskRunner(self.max_workers, max_in_flight=self.max_in_flight)

    def __repr__(self) -> str:
        return f"ThreadPoolTaskRunner(max_workers={self.max_workers})"

    def _start(self) -> None:
        self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="fluvial")

    def _shutdown(self, wait: bool) -> None:
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=wait)

    def _capture(self) -> FlowRunContext | None:
        return _flow_run.get()  # a run sees the flow run it was submitted in

    def _dispatch(self, submission: Submission, future: Future,
                  captured: FlowRunContext | None) -> None:
        self._ready.append((submission, future, captured))  # before the lock: see _drain
        if len(self._ready) == 1 and getattr(worker_thread, "runner", None) is self:
            # dispatched by one of our own drain loops (a run settled, releasing a slot or
            # an upstream) and the only run waiting: that loop takes it next, no wake-up
            return
        self._wake(1)

    def _dispatch_many(self, ready: list[tuple[Submission, Future]],
                       captured: FlowRunContext | None) -> None:
        self._ready.extend([(submission, future, captured) for submission, future in ready])
        self._wake(len(ready))

    def _wake(self, n: int) -> None:
        """Start drain loops for ``n`` newly ready runs, up to ``max_workers`` in all."""
        with self._lock:
            loops = min(n, self.max_workers - self._active)
            if loops <= 0:
                return
            self._active += loops
        executor = self._executor
        for started in range(loops):
            try:
                if executor is None:
                    raise RuntimeError("shut down")
                executor.submit(self._drain_loop)
            except RuntimeError:
                # The pool was shut down between our bookkeeping and the submit (the flow
                # ended while this callback ran): run what is ready here, not lose it.
                with self._lock:
                    self._active -= loops - started
                self._drain()
                return

    def _drain_loop(self) -> None:
        worker_thread.help_until_done = self._help_until_done
        worker_thread.runner = self
        try:
            self._drain(counted=True)
        finally:
            worker_thread.help_until_done = None
            worker_thread.runner = None

    def _help_until_done(self, future: Future, timeout: float | None) -> None:
        """Called when a task in this pool waits on a future: run ready work in this
        thread meanwhile, so the pool cannot deadlock on its own nested submissions."""
        deadline = None if timeout is None else time.monotonic() + timeout
        ready = self._ready
        while future._state is None:
            try:
                item = ready.popleft()
            except IndexError:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return
                # nothing to run yet: sleep on the future, but look for new work now and then
                future._block(_HELP_POLL if remaining is None else min(_HELP_POLL, remaining))
            else:
                execute(*item)

    def _drain(self, counted: bool = False) -> None:
        """Run ready runs until there are none.

        Runs are appended to the deque before the dispatcher takes the lock to count
        loops, and a loop leaves only after seeing the deque empty under that lock: so a
        run is never left with no loop to take it, while the pops themselves (atomic on a
        deque) need no lock.
        """
        ready, lock = self._ready, self._lock
        while True:
            try:
                item = ready.popleft()
            except IndexError:
                with lock:
                    if ready:
                        continue
                    if counted:
                        self._active -= 1
                    return
            execute(*item)


def execute(submission: Submission, future: Future, flow_ctx: FlowRunContext | None) -> None:
    """Run one ready submission in this thread, in the flow run it was submitted in,
    and report its final state."""
    token = _flow_run.set(flow_ctx) if _flow_run.get() is not flow_ctx else None
    try:
        upstreams = submission.upstreams
        if upstreams:
            state = run_in_worker(submission.task_run, [u._final_state() for u in upstreams],
                                  submission.n_data)
        else:
            state = run_in_worker(submission.task_run)
    finally:
        if token is not None:
            _flow_run.reset(token)
    future._report(state, submission)


_default: ThreadPoolTaskRunner | None = None
_default_lock = threading.Lock()


def default_runner() -> ThreadPoolTaskRunner:
    """The runner used by ``submit``/``map`` outside any flow (started on first use)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = ThreadPoolTaskRunner()
            _default.start()
        return _default
