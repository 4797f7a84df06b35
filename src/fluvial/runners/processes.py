"""``ProcessPoolTaskRunner``: task runs in local worker processes.

Work goes to a ``concurrent.futures.ProcessPoolExecutor`` started with ``forkserver``
(safe in a process that has threads). Task runs and their upstream results travel
with cloudpickle, so tasks defined in ``__main__`` or a notebook work; as with any
multiprocessing code, a script must guard its entry point with
``if __name__ == "__main__":``.

Ready runs are sent in batches sized from the measured duration of the task (a batch
aims at ~20 ms of work, one run at a time for slow tasks), so no-op maps are not
dominated by one pickle and one pipe round trip per run, and long runs still settle
one by one.

Crashes: each worker notes in shared memory which run it is executing. When a worker
dies (``os._exit``, SIGKILL, a segfault) the pool breaks; the runner reads which run
the dead process held, ends that run ``Crashed`` (or resubmits it if the task has
retries left), resubmits every other run that was in flight, and carries on with a
fresh pool.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future as _CfFuture
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import TYPE_CHECKING, Any

import cloudpickle

from fluvial.exceptions import CrashedRun, SerializationFailure
from fluvial.futures import Future
from fluvial.runners.base import LocalTaskRunner, checked_max_workers
from fluvial.runners.remote import PickleCheck, picklable_state
from fluvial.runs import TaskRun
from fluvial.states import Crashed, Failed, State
from fluvial.worker.task_engine import run_task

if TYPE_CHECKING:
    from fluvial.orchestration.tracking import RunTracker
    from fluvial.runs import Submission

__all__ = ["ProcessPoolTaskRunner"]

_TARGET_BATCH_SECONDS = 0.02
_MAX_BATCH = 512


class _Pool:
    """One executor with the shared memory its workers report into."""

    def __init__(self, max_workers: int, initializer: bytes | None = None) -> None:
        ctx = multiprocessing.get_context("forkserver")
        self.counter = ctx.Value("i", 0)
        self.running = ctx.Array("q", max_workers, lock=False)  # run seq per worker slot
        self.pids = ctx.Array("q", max_workers, lock=False)
        self.executor = ProcessPoolExecutor(
            max_workers, mp_context=ctx, initializer=_init_worker,
            initargs=(self.counter, self.running, self.pids, initializer, _fluvial_env()),
        )
        self.crashed: dict[int, str] | None = None  # seq -> cause, once the pool broke

    def diagnose(self) -> dict[int, str]:
        """Which run seqs were held by workers that died, and how they died."""
        if self.crashed is None:
            processes = dict(getattr(self.executor, "_processes", None) or {})
            crashed: dict[int, str] = {}
            for slot in range(len(self.pids)):
                pid, seq = self.pids[slot], self.running[slot]
                proc = processes.get(pid)
                code = proc.exitcode if proc is not None else None
                if seq and code is not None and code != -signal.SIGTERM:
                    crashed[seq] = f"worker process {pid} exited with {_describe_exit(code)}"
            self.crashed = crashed
        return self.crashed


def _describe_exit(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class ProcessPoolTaskRunner(LocalTaskRunner):
    """Run tasks in ``max_workers`` local processes (default: the CPU count).

    ``initializer(*initargs)`` runs once in every worker process the runner starts
    (as ``concurrent.futures.ProcessPoolExecutor``'s); it travels with cloudpickle, so a
    function defined in ``__main__`` works. If it raises, the runs sent to that worker
    end ``Crashed`` with a message naming it (the pool is not retried forever)."""

    def __init__(self, max_workers: int | None = None,
                 initializer: Callable[..., Any] | None = None,
                 initargs: tuple[Any, ...] = ()) -> None:
        super().__init__()
        self.max_workers = checked_max_workers(max_workers, os.cpu_count() or 1)
        if initializer is not None and not callable(initializer):
            raise TypeError(f"initializer must be callable, got {initializer!r}")
        if not isinstance(initargs, tuple):
            raise TypeError(f"initargs must be a tuple, got {type(initargs).__name__}")
        self.initializer = initializer
        self.initargs = initargs
        self._initializer_blob: bytes | None = None
        if initializer is not None:
            try:
                self._initializer_blob = cloudpickle.dumps((initializer, initargs))
            except Exception as exc:
                raise SerializationFailure(
                    f"ProcessPoolTaskRunner: initializer {_name_of(initializer)} or its "
                    f"initargs cannot be pickled to send them to the worker processes: {exc}"
                ) from exc
        self._lock = threading.Lock()
        self._ready: deque[tuple[Submission, Future]] = deque()
        self._inflight = 0
        self._seq = 0
        self._pool: _Pool | None = None
        self._durations: dict[str, float] = {}
        self._blobs = _TaskBlobs()
        self._check_pickle = PickleCheck()

    def duplicate(self) -> ProcessPoolTaskRunner:
        return ProcessPoolTaskRunner(self.max_workers, self.initializer, self.initargs)

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"

    def _start(self) -> None:
        self._pool = _Pool(self.max_workers, self._initializer_blob)

    def _shutdown(self, wait: bool) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.executor.shutdown(wait=wait, cancel_futures=not wait)

    # -- dispatch -------------------------------------------------------------
    def submit(self, submission: Submission, tracker: RunTracker | None) -> Future:
        self._check_pickle(submission)  # an unpicklable argument fails here, by name
        return super().submit(submission, tracker)

    def _dispatch(self, submission: Submission, future: Future) -> None:
        with self._lock:
            self._ready.append((submission, future))
        self._pump()

    def _batch_size(self, name: str) -> int:
        spread = -(-len(self._ready) // self.max_workers)  # ceil: keep every worker busy
        avg = self._durations.get(name)
        if avg is None:
            return 1
        by_time = int(_TARGET_BATCH_SECONDS / avg) if avg > 0 else _MAX_BATCH
        return max(1, min(_MAX_BATCH, by_time, spread))

    def _pump(self) -> None:
        while True:
            with self._lock:
                pool = self._pool
                if pool is None or not self._ready or self._inflight >= 2 * self.max_workers:
                    return
                first = self._ready[0][0].task_run.task.name
                size = self._batch_size(first)
                batch: list[tuple[int, Submission, Future]] = []
                while self._ready and len(batch) < size:
                    self._seq += 1
                    sub, fut = self._ready.popleft()
                    batch.append((self._seq, sub, fut))
                self._inflight += 1
            self._send(pool, batch)

    def _send(self, pool: _Pool, batch: list[tuple[int, Submission, Future]]) -> None:
        payload, batch = _pickle_batch(self._blobs, batch)
        if not batch:
            with self._lock:
                self._inflight -= 1
            return
        try:
            cf = pool.executor.submit(_run_batch, payload)
        except (BrokenProcessPool, RuntimeError) as exc:
            cf = _CfFuture()
            cf.set_exception(BrokenProcessPool(str(exc)))
        cf.add_done_callback(lambda done: self._on_batch_done(pool, batch, done))

    def _on_batch_done(self, pool: _Pool, batch: list[tuple[int, Submission, Future]],
                       done: _CfFuture) -> None:
        exc = done.exception()
        if exc is None:
            try:
                states, durations = cloudpickle.loads(done.result())
            except Exception as error:  # e.g. the worker runs other code than the driver
                exc = error
        if exc is None:
            for name, seconds in durations.items():
                prev = self._durations.get(name)
                self._durations[name] = seconds if prev is None else 0.8 * prev + 0.2 * seconds
            for (_, _, future), state in zip(batch, states, strict=True):
                future._complete(state)
        elif isinstance(exc, BrokenProcessPool):
            self._recover(pool, batch)
        else:  # the batch could not even be unpickled in the worker, or similar
            for _, sub, future in batch:
                future._complete(Crashed(exc, f"{self.name} could not run task run "
                                              f"{sub.task_run.name!r}: {exc!r}"))
        with self._lock:
            self._inflight -= 1
        self._pump()

    # -- crashes ------------------------------------------------------------------
    def _recover(self, pool: _Pool, batch: list[tuple[int, Submission, Future]]) -> None:
        with self._lock:
            crashed = pool.diagnose()
            if self._pool is pool:  # first batch to notice: replace the pool
                pool.executor.shutdown(wait=False)
                self._pool = _Pool(self.max_workers, self._initializer_blob)
        retry = []
        for seq, sub, future in batch:
            cause = crashed.get(seq)
            if cause is None:
                retry.append((sub, future))  # innocent bystander: run it again
                continue
            task_run = sub.task_run
            task_run.run_count += 1
            if task_run.run_count <= task_run.task.retries:
                retry.append((sub, future))
                continue
            message = (f"Task run {task_run.name!r} crashed: {self.name} {cause} while "
                       f"running it")
            future._complete(Crashed(CrashedRun(message), message))
        with self._lock:
            self._ready.extendleft(reversed(retry))


class _TaskBlobs:
    """Each task pickled once per runner, shipped as bytes with every batch that runs it;
    workers unpickle each task once (cached by token)."""

    def __init__(self) -> None:
        self._blobs: dict[int, tuple[Any, str, bytes]] = {}  # id(task) -> (task, token, blob)

    def token(self, task: Any, tasks: dict[str, bytes]) -> str:
        entry = self._blobs.get(id(task))
        if entry is None:
            entry = self._blobs[id(task)] = (task, uuid.uuid4().hex, cloudpickle.dumps(task))
        tasks[entry[1]] = entry[2]
        return entry[1]


def _pickle_batch(
    blobs: _TaskBlobs, batch: list[tuple[int, Submission, Future]],
) -> tuple[bytes, list[tuple[int, Submission, Future]]]:
    """Pickle a batch; runs that cannot be pickled fail now, naming the parameter."""
    tasks: dict[str, bytes] = {}
    items = [(seq, blobs.token(sub.task_run.task, tasks), sub.task_run.detached(),
              _upstream_states(sub), sub.n_data) for seq, sub, _ in batch]
    try:
        return cloudpickle.dumps((tasks, items)), batch
    except Exception:
        good = []
        for (seq, sub, future), item in zip(batch, items, strict=True):
            try:
                cloudpickle.dumps(item)
            except Exception as exc:
                error = SerializationFailure(_unpicklable_message(sub, exc))
                error.__cause__ = exc
                future._complete(Failed(error, str(error)))
            else:
                good.append((seq, sub, future))
        kept = {seq for seq, _, _ in good}
        return cloudpickle.dumps((tasks, [i for i in items if i[0] in kept])), good


def _upstream_states(sub: Submission) -> list[State]:
    return [u._final_state() for u in sub.upstreams]


def _unpicklable_message(sub: Submission, exc: Exception) -> str:
    task_run = sub.task_run
    for name, value in task_run.parameters.items():
        try:
            cloudpickle.dumps(value)
        except Exception:
            return (f"task {task_run.task.name!r}: parameter {name!r} "
                    f"({type(value).__name__}) cannot be pickled to send it to a worker "
                    f"process: {exc}")
    return f"task {task_run.task.name!r} cannot be pickled to send it to a worker: {exc}"


# -- worker side ------------------------------------------------------------------

_slot = -1
_running: Any = None
_init_error: str | None = None  # why the user's initializer failed in this worker


def _name_of(fn: Any) -> str:
    return repr(getattr(fn, "__qualname__", None) or fn)


def _fluvial_env() -> dict[str, str]:
    """The driver's ``FLUVIAL_*`` settings, for workers forked from an older forkserver."""
    return {k: v for k, v in os.environ.items() if k.startswith("FLUVIAL_")}


def _init_worker(counter: Any, running: Any, pids: Any, initializer: bytes | None,
                 env: dict[str, str]) -> None:
    global _slot, _running, _init_error
    # the forkserver keeps the environment it started with; a worker takes the driver's
    for key in [k for k in os.environ if k.startswith("FLUVIAL_") and k not in env]:
        del os.environ[key]
    os.environ.update(env)
    with counter.get_lock():
        _slot = counter.value % len(pids)
        counter.value += 1
    pids[_slot] = os.getpid()
    _running = running
    if initializer is None:
        return
    fn: Any = None
    try:
        fn, initargs = cloudpickle.loads(initializer)
        fn(*initargs)
    except Exception as exc:  # noqa: BLE001 - reported with every run sent to this worker
        _init_error = (f"the initializer {_name_of(fn)} of ProcessPoolTaskRunner raised in "
                       f"worker process {os.getpid()}: {type(exc).__name__}: {exc}")


_worker_tasks: dict[str, Any] = {}  # tasks this worker has unpickled, by token


def _run_batch(payload: bytes) -> bytes:
    tasks, items = cloudpickle.loads(payload)
    for token, blob in tasks.items():
        if token not in _worker_tasks:
            _worker_tasks[token] = cloudpickle.loads(blob)
    states: list[State] = []
    runs = []
    durations: dict[str, float] = {}
    for seq, token, detached, upstream_states, n_data in items:
        task_run = TaskRun.attached(_worker_tasks[token], detached)
        runs.append(task_run)
        if _init_error is not None:
            message = f"Task run {task_run.name!r} crashed: {_init_error}"
            states.append(Crashed(CrashedRun(message), message))
            continue
        _running[_slot] = seq
        start = time.perf_counter()
        try:
            state = run_task(task_run, upstream_states, n_data)
        except BaseException as exc:  # noqa: BLE001 - the engine broke: the run crashed
            state = Crashed(exc, f"The engine crashed while running the task: {exc!r}")
        durations[task_run.task.name] = time.perf_counter() - start
        states.append(state)
        _running[_slot] = 0
    try:
        # the plain pickler first: several times cheaper for small results, and it
        # refuses (rather than mis-pickles) what only cloudpickle can send back
        return pickle.dumps((states, durations), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        pass
    try:
        return cloudpickle.dumps((states, durations))
    except Exception:  # name the runs whose results cannot travel; send the rest
        checked = [picklable_state(run, state) for run, state in zip(runs, states, strict=True)]
        return cloudpickle.dumps((checked, durations))
