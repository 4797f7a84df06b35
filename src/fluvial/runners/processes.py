"""``ProcessPoolTaskRunner``: task runs in local worker processes.

Workers are ``forkserver`` processes (safe in a process that has threads) that the
runner starts and watches itself. Task runs and their upstream results travel with
cloudpickle, so tasks defined in ``__main__`` or a notebook work; as with any
multiprocessing code, a script must guard its entry point with
``if __name__ == "__main__":``.

Ready runs are sent in batches sized from the measured duration of the task
(``fluvial.runners.batching``: a batch aims at ~20 ms of work, one run at a time for
slow tasks), so no-op maps are not
dominated by one pickle and one pipe round trip per batch; each worker has at most two
batches outstanding.

At most once per attempt. Each worker has its own pipe of batches and its own pipe of
results, and reports every run's final state the moment the run ends (not per batch).
A worker notes in shared memory which run it is executing. When a worker dies
(``os._exit``, SIGKILL, a segfault) the driver reads the end of its result pipe: runs
it reported keep their results; the run it was executing is reported ``Crashed`` (the
driver's crash rule, ``fluvial.orchestration.crashes``, sends it again while its task
has ``retries`` left: a crash counts as an attempt); the runs queued behind it never
started and go to another worker. Other workers are not
touched. A worker that dies while starting (its initializer) three times in a row
crashes the runs sent to it instead of being restarted forever.

Orphans: a worker reads its batch pipe in a thread of its own, so when the driver dies
(even by SIGKILL, even in the middle of a long run) it sees the pipe close without the
driver's "no more work" message, and exits at once. The forkserver lives as long as
any of its workers (each holds its "alive" pipe) and then exits, and the resource
tracker follows: a killed driver leaves no process behind. Workers also ask the kernel
to kill them if the forkserver dies (``PR_SET_PDEATHSIG`` on Linux).
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import cloudpickle

from fluvial.exceptions import CrashedRun, SerializationFailure
from fluvial.futures import Future
from fluvial.logging.shipping import record_shipped
from fluvial.runners.base import LocalTaskRunner, checked_max_workers
from fluvial.runners.batching import BatchSizer
from fluvial.runs import TaskRun
from fluvial.states import Crashed, Failed, State
from fluvial.worker.entry import crash_state, run_shipping_logs
from fluvial.worker.pickling import PickleCheck, picklable_state, unpicklable_arguments

if TYPE_CHECKING:
    from collections.abc import Sequence

    from fluvial.runs import Submission

__all__ = ["ProcessPoolTaskRunner"]

_TARGET_BATCH_SECONDS = 0.02
_MAX_BATCH = 512
_BATCHES_PER_WORKER = 2
_STARTING = -1  # the worker's "running" cell while its initializer runs
_MAX_START_DEATHS = 3

_Item = tuple["Submission", Future]


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "an unknown status"
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"exit code {code}"


class _Worker:
    """One worker process, seen from the driver: its pipes, its outstanding runs."""

    def __init__(self, ctx: Any, initializer: bytes | None, owner: str) -> None:
        task_r, self.task_w = ctx.Pipe(duplex=False)
        self.result_r, result_w = ctx.Pipe(duplex=False)
        self.running = ctx.RawValue("q", _STARTING)  # seq of the run it executes
        self.proc = ctx.Process(target=_worker_main, name="fluvial-process-worker",
                                args=(task_r, result_w, self.running, initializer,
                                      _fluvial_env()),
                                daemon=True)
        self.proc.start()
        task_r.close()  # the worker holds the only read end: it sees EOF when we go
        result_w.close()  # and the only write end: we see EOF when it dies
        self.pending: dict[int, _Item] = {}  # seq -> run, in the order it runs them
        self.batches: deque[int] = deque()  # runs left in each outstanding batch
        self.outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self.closing = False
        threading.Thread(target=self._send_loop, name=f"fluvial-process-send-{owner}",
                         daemon=True).start()

    def _send_loop(self) -> None:
        while True:
            payload = self.outbox.get()
            try:
                if payload is None:  # "no more work": the worker ends after what it has
                    self.task_w.send_bytes(b"")
                    self.task_w.close()
                    return
                self.task_w.send_bytes(payload)
            except OSError:  # the worker died: its reader settles what it held
                return


class ProcessPoolTaskRunner(LocalTaskRunner):
    """Run tasks in ``max_workers`` local processes (default: the CPU count).

    ``initializer(*initargs)`` runs once in every worker process the runner starts
    (as ``concurrent.futures.ProcessPoolExecutor``'s); it travels with cloudpickle, so a
    function defined in ``__main__`` works. If it raises, the runs sent to that worker
    end ``Crashed`` with a message naming it (the pool is not retried forever)."""

    def __init__(self, max_workers: int | None = None,
                 initializer: Callable[..., Any] | None = None,
                 initargs: tuple[Any, ...] = (), *,
                 max_in_flight: int | None = None) -> None:
        super().__init__(max_in_flight)
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
        self._ready: deque[_Item] = deque()
        self._seq = 0
        self._workers: list[_Worker] = []
        self._ctx: Any = None
        self._start_deaths = 0
        self._sizer = BatchSizer(_TARGET_BATCH_SECONDS, _MAX_BATCH)
        self._blobs = _TaskBlobs()
        self._check_pickle = PickleCheck()

    def duplicate(self) -> ProcessPoolTaskRunner:
        return ProcessPoolTaskRunner(self.max_workers, self.initializer, self.initargs,
                                     max_in_flight=self.max_in_flight)

    def __repr__(self) -> str:
        return f"ProcessPoolTaskRunner(max_workers={self.max_workers})"

    @property
    def thread_tag(self) -> str:
        """What the names of this runner's threads end with (for diagnostics and tests)."""
        return f"{id(self):x}"

    def worker_pids(self) -> list[int]:
        """The process ids of the live workers (for diagnostics and tests)."""
        with self._lock:
            return [w.proc.pid for w in self._workers if w.proc.pid is not None]

    def _start(self) -> None:
        self._ctx = multiprocessing.get_context("forkserver")

    def _shutdown(self, wait: bool) -> None:
        with self._lock:
            workers, self._workers = self._workers, []
            self._ready.clear()
        for w in workers:
            w.closing = True
            w.outbox.put(None)  # the worker finishes what it was sent, then exits
        if not wait:
            return
        for w in workers:
            w.proc.join()

    # -- dispatch -------------------------------------------------------------
    def submit_many(self, submissions: Sequence[Submission]) -> list[Future]:
        for submission in submissions:  # all or nothing: an unpicklable argument fails
            self._check_pickle(submission)  # here, by name, before any run is dispatched
        return super().submit_many(submissions)

    def _dispatch(self, submission: Submission, future: Future, captured: Any) -> None:
        with self._lock:
            self._ready.append((submission, future))
        self._pump()

    def _dispatch_many(self, ready: list[tuple[Submission, Future]], captured: Any) -> None:
        with self._lock:
            self._ready.extend(ready)
        self._pump()

    def _batch_size(self, name: str) -> int:
        return self._sizer.size(name, len(self._ready), self.max_workers)

    def _free_worker(self) -> _Worker | None:
        """The least busy worker with room for a batch, starting one if needed (lock held)."""
        best = min(self._workers, key=lambda w: len(w.batches), default=None)
        if best is not None and not best.batches:
            return best
        if len(self._workers) < self.max_workers:
            worker = _Worker(self._ctx, self._initializer_blob, self.thread_tag)
            self._workers.append(worker)
            threading.Thread(target=self._read_loop, args=(worker,),
                             name=f"fluvial-process-results-{self.thread_tag}",
                             daemon=True).start()
            return worker
        if best is not None and len(best.batches) < _BATCHES_PER_WORKER:
            return best
        return None

    def _pump(self) -> None:
        while True:
            with self._lock:
                if not self._started or not self._ready:
                    return
                worker = self._free_worker()
                if worker is None:
                    return
                size = self._batch_size(self._ready[0][0].task_run.task.name)
                batch: list[tuple[int, Submission, Future]] = []
                while self._ready and len(batch) < size:
                    self._seq += 1
                    sub, fut = self._ready.popleft()
                    batch.append((self._seq, sub, fut))
                payload, batch = _pickle_batch(self._blobs, batch)
                if not batch:
                    continue
                for seq, sub, fut in batch:
                    worker.pending[seq] = (sub, fut)
                worker.batches.append(len(batch))
                worker.outbox.put(payload)  # under the lock: the pipe keeps `pending`'s order

    # -- results --------------------------------------------------------------
    def _read_loop(self, worker: _Worker) -> None:
        """Settle each run as the worker reports it; on EOF, settle what it still held.

        Reads the pipe in large chunks and settles every complete report in it at once:
        a worker running tiny tasks writes many reports between two reads."""
        fd = worker.result_r.fileno()
        buffer = b""
        while True:
            try:
                chunk = os.read(fd, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                break
            buffer += chunk
            reports = []
            pos, end = 0, len(buffer)
            while end - pos >= 4:
                size = int.from_bytes(buffer[pos:pos + 4], "big")
                if end - pos - 4 < size:
                    break
                reports.append(buffer[pos + 4:pos + 4 + size])
                pos += 4 + size
            buffer = buffer[pos:]
            if reports:
                self._settle(worker, reports)
        worker.result_r.close()
        worker.proc.join()
        self._worker_died(worker)

    def _settle(self, worker: _Worker, reports: list[bytes]) -> None:
        settled: list[tuple[Submission, Future, State]] = []
        batch_done = False
        with self._lock:
            for data in reports:
                try:
                    seq, state, seconds = pickle.loads(data)
                except Exception as exc:  # e.g. the worker runs other code than the driver
                    seq, state, seconds = _undecodable(worker, exc)
                item = worker.pending.pop(seq, None)
                if worker.batches:
                    worker.batches[0] -= 1
                    if worker.batches[0] <= 0:
                        worker.batches.popleft()
                        batch_done = True
                if item is None:
                    continue
                self._sizer.observe(item[0].task_run.task.name, seconds)
                settled.append((item[0], item[1], state))
        for sub, future, state in settled:
            record_shipped(state)  # the run's logs from the worker process
            future._report(state, sub)
        if batch_done:
            self._pump()

    # -- crashes ------------------------------------------------------------------
    def _worker_died(self, worker: _Worker) -> None:
        worker.outbox.put(None)  # its sender thread ends too
        with self._lock:
            if worker in self._workers:
                self._workers.remove(worker)
            held = list(worker.pending.items())
            worker.pending.clear()
            worker.batches.clear()
            running = worker.running.value
            starting = running == _STARTING
            if held and starting:
                self._start_deaths += 1
            elif running != _STARTING:
                self._start_deaths = 0
            give_up = starting and self._start_deaths >= _MAX_START_DEATHS
        if not held:
            return
        cause = (f"worker process {worker.proc.pid} exited with "
                 f"{_describe_exit(worker.proc.exitcode)}")
        again: list[_Item] = []
        for seq, (sub, future) in held:
            task_run = sub.task_run
            if give_up:
                message = f"Task run {task_run.name!r} crashed: {cause} while starting"
                future._report(crash_state(task_run, message), sub)
            elif seq == running:  # the run it was executing (the first one unreported)
                message = f"Task run {task_run.name!r} crashed: {self.name} {cause} while running it"
                future._report(crash_state(task_run, message), sub)
            else:  # never started: it goes to another worker
                again.append((sub, future))
        if worker.closing and again:  # shut down: nothing will run them
            for sub, future in again:
                message = f"Task run {sub.task_run.name!r} was not run: {self.name} was shut down"
                future._complete(Crashed(CrashedRun(message), message))
            return
        with self._lock:
            self._ready.extendleft(reversed(again))
        self._pump()


def _undecodable(worker: _Worker, exc: Exception) -> tuple[int, State, float]:
    """The state of the run whose result could not be read (the first one pending)."""
    seq = next(iter(worker.pending), 0)
    message = f"ProcessPoolTaskRunner could not read the result of a task run: {exc!r}"
    return seq, Crashed(exc, message), -1.0


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
                error = unpicklable_arguments(sub.task_run, exc)
                future._complete(Failed(error, str(error)))
            else:
                good.append((seq, sub, future))
        kept = {seq for seq, _, _ in good}
        return cloudpickle.dumps((tasks, [i for i in items if i[0] in kept])), good


def _upstream_states(sub: Submission) -> list[State]:
    return [u._final_state() for u in sub.upstreams]


# -- worker side ------------------------------------------------------------------

_init_error: str | None = None  # why the user's initializer failed in this worker
_worker_tasks: dict[str, Any] = {}  # tasks this worker has unpickled, by token


def _name_of(fn: Any) -> str:
    return repr(getattr(fn, "__qualname__", None) or fn)


def _die_with_parent() -> None:
    """Ask the kernel to SIGKILL this process when its parent (the forkserver) exits."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent is already gone
        os._exit(1)


def _run_initializer(initializer: bytes | None) -> None:
    global _init_error
    if initializer is None:
        return
    fn: Any = None
    try:
        fn, initargs = cloudpickle.loads(initializer)
        fn(*initargs)
    except Exception as exc:  # noqa: BLE001 - reported with every run sent to this worker
        _init_error = (f"the initializer {_name_of(fn)} of ProcessPoolTaskRunner raised in "
                       f"worker process {os.getpid()}: {type(exc).__name__}: {exc}")


def _fluvial_env() -> dict[str, str]:
    """The driver's ``FLUVIAL_*`` settings, for workers forked from an older forkserver."""
    return {k: v for k, v in os.environ.items() if k.startswith("FLUVIAL_")}


def _worker_main(task_r: Any, result_w: Any, running: Any, initializer: bytes | None,
                 env: dict[str, str]) -> None:
    """The worker process: run the batches it is sent; report each run when it ends."""
    _die_with_parent()
    # the forkserver keeps the environment it started with; a worker takes the driver's
    for key in [k for k in os.environ if k.startswith("FLUVIAL_") and k not in env]:
        del os.environ[key]
    os.environ.update(env)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    _run_initializer(initializer)
    running.value = 0
    batches: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    threading.Thread(target=_read_batches, args=(task_r, batches), daemon=True,
                     name="fluvial-worker-lifeline").start()
    while True:
        payload = batches.get()
        if not payload:  # the driver has no more work for this worker
            return
        _run_batch(payload, result_w.fileno(), running)


def _read_batches(task_r: Any, batches: queue.SimpleQueue[bytes]) -> None:
    """Read batches as they come, so the worker notices at once, even in the middle of a
    long run, when the driver is gone: EOF before the driver's "no more work" message
    means the driver died, and the worker exits rather than live on as an orphan (the
    forkserver lives as long as its workers do, so its death cannot be the signal)."""
    while True:
        try:
            payload = task_r.recv_bytes()
        except (EOFError, OSError):
            os._exit(70)
        batches.put(payload)
        if not payload:
            return


def _report(fd: int, data: bytes) -> None:
    """One report on the result pipe: a 4-byte length, then the pickle."""
    view = memoryview(len(data).to_bytes(4, "big") + data)
    while view:
        view = view[os.write(fd, view):]


def _run_batch(payload: bytes, result_fd: int, running: Any) -> None:
    tasks, items = cloudpickle.loads(payload)
    for token, blob in tasks.items():
        if token not in _worker_tasks:
            _worker_tasks[token] = cloudpickle.loads(blob)
    for seq, token, detached, upstream_states, n_data in items:
        task_run = TaskRun.attached(_worker_tasks[token], detached)
        if _init_error is not None:
            message = f"Task run {task_run.name!r} crashed: {_init_error}"
            _report(result_fd, _dump_result(seq, crash_state(task_run, message), -1.0,
                                            task_run))
            continue
        running.value = seq
        start = time.perf_counter()
        state = run_shipping_logs(task_run, upstream_states, n_data)
        _report(result_fd, _dump_result(seq, state, time.perf_counter() - start, task_run))
        running.value = 0


def _dump_result(seq: int, state: State, seconds: float, task_run: TaskRun) -> bytes:
    try:
        # the plain pickler first: several times cheaper for small results, and it
        # refuses (rather than mis-pickles) what only cloudpickle can send back
        return pickle.dumps((seq, state, seconds), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:
        pass
    try:
        return cloudpickle.dumps((seq, state, seconds))
    except Exception:  # name the run whose result cannot travel
        return cloudpickle.dumps((seq, picklable_state(task_run, state), seconds))
