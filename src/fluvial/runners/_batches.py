"""The driver side of batched maps on the cluster runners (Dask, Ray).

Independent runs submitted together (no upstream futures: the usual ``.map``; a lone
``.submit`` goes at once, the per-run way, so that its dependents can follow it in the
cluster) wait in a queue in the driver and go to the backend in groups, at most ``_BATCHES_PER_SLOT`` groups per worker
thread at a time. The size of a group comes from the measured duration of the
task (``fluvial.runners.batching``, aiming at ``TARGET_BATCH_SECONDS`` of work):

* a group of several runs is one backend task (``fluvial.worker.batch.run_batch``);
  every run in it ends in its own state, and the states come back together, with
  their results, when the batch ends: each run's future is settled (and recorded)
  with its own state, and its result is already in the driver. Only tasks measured
  faster than half the target are batched, so results pulled this way are those of
  runs that take a millisecond or so;
* a task not measured yet is *probed*: its first runs go as groups of one the same
  way, which measures them where they run (at most two per worker thread: their
  results come to the driver);
* the runs of a task measured slower than half the target go the per-run way
  (``RemoteTaskRunner._go``), one by one as room frees. Their results stay in the
  cluster until asked for, and dependents receive them worker to worker. The backend
  reports how long each ran (Ray in its status, Dask through the scheduler's compute
  times, ``runners._dask_times``), which keeps the measure current: a task that was
  slow for a while (a loaded machine) is batched again once it is fast.

A batch that the backend loses (its worker died, Dask gave up on it with
``KilledWorker``, Ray reports the worker crashed) has not settled any of its runs:
each of them goes again on its own, without counting an attempt, so that a run that
kills its worker is then found and counted alone by the driver's crash rule.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fluvial.exceptions import CrashedRun
from fluvial.futures._base import dispatch_failed
from fluvial.runners.batching import BatchSizer
from fluvial.states import Crashed, State, StateType

if TYPE_CHECKING:
    from fluvial.runners.remote import RemoteFuture, RemoteTaskRunner
    from fluvial.runs import Submission

__all__ = ["MAX_BATCH", "TARGET_BATCH_SECONDS", "RemoteBatcher"]

TARGET_BATCH_SECONDS = 0.01
MAX_BATCH = 1024
_BATCHES_PER_SLOT = 2

Item = tuple["Submission", "RemoteFuture", Any]  # (submission, future, backend options)
BatchDone = Callable[[Any, "BaseException | None"], None]


class RemoteBatcher:
    """The queue of independent runs of one started cluster runner."""

    def __init__(self, runner: RemoteTaskRunner, sizer: BatchSizer) -> None:
        self._runner = runner
        self._sizer = sizer
        self._lock = threading.Lock()
        self._ready: deque[Item] = deque()
        self._in_flight = 0
        self._singles: dict[int, str] = {}  # id(future) of a run sent alone -> task name
        self._closed = False

    def add(self, items: list[Item]) -> None:
        with self._lock:
            self._ready.extend(items)
        self.pump()

    def close(self) -> None:
        """The runner shuts down: runs still queued are not run."""
        with self._lock:
            self._closed = True
            left = list(self._ready)
            self._ready.clear()
        for submission, future, _ in left:
            message = (f"Task run {submission.task_run.name!r} was not run: "
                       f"{self._runner!r} was shut down")
            future._complete(Crashed(CrashedRun(message), message))

    def pump(self) -> None:
        """Send groups while the backend has room for them."""
        while True:
            slots = self._runner._slots()
            with self._lock:
                ready = self._ready
                if self._closed or not ready \
                        or self._in_flight >= _BATCHES_PER_SLOT * slots:
                    return
                first = ready.popleft()
                task, options = first[0].task_run.task, first[2]
                # a task not measured yet: its first runs go one per backend task the
                # batch way, which measures them where they run; a slow one goes the
                # per-run way
                alone = self._sizer.slow(task.name)
                size = self._sizer.size(task.name, len(ready) + 1, slots)
                batch = [first]
                while ready and len(batch) < size:
                    item = ready[0]
                    if item[0].task_run.task is not task or item[2] is not options \
                            or item[0].task_run.tags != first[0].task_run.tags:
                        break  # (a batch has one tag set: it takes its tag slots whole)
                    batch.append(ready.popleft())
                self._in_flight += 1
                if alone:
                    self._singles[id(first[1])] = task.name
            self._send(batch, task, options, alone)

    def _send(self, batch: list[Item], task: Any, options: Any, alone: bool) -> None:
        runner = self._runner
        try:
            if alone:
                submission, future, _ = batch[0]
                runner._go([(submission, future)], options)
            else:
                runner._launch_batch(task, [(s, f) for s, f, _ in batch], options,
                                     lambda value, exc: self._batch_done(batch, value, exc))
        except Exception as exc:  # noqa: BLE001 - e.g. options the backend refuses
            with self._lock:
                self._in_flight -= 1
                if alone:
                    self._singles.pop(id(batch[0][1]), None)
            for _, future, _ in batch:
                dispatch_failed(future, exc)

    def backend_done(self, future: RemoteFuture, seconds: float | None) -> None:
        """The backend task of a run sent on its own ended (before it is reported);
        ``seconds``: how long it ran on its worker, when the backend says (Ray)."""
        with self._lock:
            name = self._singles.pop(id(future), None)
            if name is None:
                return
            self._in_flight -= 1
            if seconds is not None:
                self._sizer.observe(name, seconds)
        self.pump()

    def _batch_done(self, batch: list[Item], value: Any, exc: BaseException | None) -> None:
        if exc is not None:
            with self._lock:
                self._in_flight -= 1
            self._resend_alone(batch)
            self.pump()
            return
        states, seconds = value
        name = batch[0][0].task_run.task.name
        per_run = seconds / len(batch)
        with self._lock:
            self._in_flight -= 1
            for _ in batch:
                self._sizer.observe(name, per_run)
        self.pump()  # the next group goes before this one's runs are settled
        for (submission, future, _), state in zip(batch, states, strict=True):
            _settle(future, submission, state)

    def _resend_alone(self, batch: list[Item]) -> None:
        """A lost batch: each of its runs goes again on its own, no attempt counted."""
        for submission, future, options in batch:
            try:
                self._runner._go([(submission, future)], options)
            except Exception as exc:  # noqa: BLE001 - the runner is gone
                dispatch_failed(future, exc)


def _settle(future: RemoteFuture, submission: Submission, state: State) -> None:
    if state.type is StateType.COMPLETED:
        future._fetched = state  # the result came with the batch
    future._report(state, submission)
