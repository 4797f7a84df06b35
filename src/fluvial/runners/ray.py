"""``RayTaskRunner``: task runs on a Ray cluster.

With no ``address`` the runner uses the Ray session already initialised in this
process, or starts a local one with ``ray.init(**init_kwargs)`` (and shuts it down
when the flow ends) that listens on 127.0.0.1 only (see ``_ray_local``);
``address="auto"`` or ``"ray://host:10001"`` joins a cluster, left as configured.

Each task run is one Ray task with two returns: a small *status* tuple (the run's
state without its result) and the *result* as a plain value (a boxed state when the
run did not complete). The driver watches only the status; the result stays in Ray's
object store, and downstream runs receive it as an ``ObjectRef`` argument, so Ray
moves results worker to worker. ``.result()`` fetches it. A run whose
upstream did not complete ends ``NotReady`` on the worker, through the same engine as
on every runner. A worker that dies is reported ``Crashed``; the driver's crash rule
resubmits it while the task has ``retries`` left (a crash counts as an attempt). Ray's
own task retries are off, so a crash is counted once, by the driver.

``remote_options(num_cpus=..., num_gpus=..., resources=...)`` sets Ray resources for
the task runs submitted inside it.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fluvial.exceptions import RunnerError
from fluvial.logging.shipping import with_logs
from fluvial.runners._by_value import ship_by_value
from fluvial.runners._ray_local import init_ray
from fluvial.runners.base import require_extra
from fluvial.runners.remote import RemoteFuture, RemoteTaskRunner
from fluvial.runs import TaskRun
from fluvial.states import State, StateType
from fluvial.worker.batch import run_batch
from fluvial.worker.entry import run_in_worker

if TYPE_CHECKING:
    from fluvial.futures import Future
    from fluvial.runs import Submission

__all__ = ["RayTaskRunner", "remote_options"]

logger = logging.getLogger("fluvial.runners.ray")

_remote_options: ContextVar[Mapping[str, Any]] = ContextVar(
    "fluvial_ray_options", default=MappingProxyType({})
)


def _ray() -> Any:
    return require_extra("ray", "RayTaskRunner", "ray")


def _picklers() -> tuple[Any, ...]:
    """cloudpickle and Ray's vendored copy of it (Ray exports functions with its own)."""
    import cloudpickle
    from ray import cloudpickle as ray_cloudpickle

    return (cloudpickle, ray_cloudpickle)


@contextlib.contextmanager
def remote_options(**options: Any) -> Iterator[Mapping[str, Any]]:
    """Ray options (``num_cpus``, ``num_gpus``, ``resources``, ``memory`` ...) for the task
    runs submitted inside the block."""
    merged = {**_remote_options.get(), **options}
    token = _remote_options.set(merged)
    try:
        yield merged
    finally:
        _remote_options.reset(token)


class RayTaskRunner(RemoteTaskRunner):
    """Run tasks on Ray: a local session by default, or a cluster by ``address``."""

    def __init__(self, address: str | None = None,
                 init_kwargs: dict[str, Any] | None = None, *,
                 max_in_flight: int | None = None) -> None:
        super().__init__(max_in_flight)
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a string like 'auto' or 'ray://host:10001', "
                            f"got {address!r}")
        if init_kwargs is not None and not isinstance(init_kwargs, dict):
            raise TypeError(f"init_kwargs must be a dict, got {type(init_kwargs).__name__}")
        self.address = address
        self.init_kwargs = dict(init_kwargs or {})
        self._owns_session = False
        self._watcher: _StatusWatcher | None = None
        self._remotes: dict[tuple, tuple[Any, Any]] = {}  # (id(task), options, batch) -> (task, fn)
        self._cpus: tuple[float, int] = (0.0, 1)  # (when counted, CPUs of the cluster)

    def duplicate(self) -> RayTaskRunner:
        return RayTaskRunner(self.address, self.init_kwargs, max_in_flight=self.max_in_flight)

    def __repr__(self) -> str:
        return f"RayTaskRunner({self.address or 'local'})"

    def _start(self) -> None:
        ray = _ray()
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": True, **self.init_kwargs}
            try:
                init_ray(ray, self.address, kwargs)  # a local instance binds 127.0.0.1
            except ConnectionError as exc:
                raise RunnerError(f"RayTaskRunner cannot reach the Ray cluster at "
                                  f"{self.address!r}: {exc}") from exc
            self._owns_session = True

    def _shutdown(self, wait: bool) -> None:
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            watcher.close()
        self._remotes.clear()
        if self._owns_session:
            self._owns_session = False
            _ray().shutdown()

    # -- submission (see RemoteTaskRunner) -------------------------------------------
    def slot_manager(self) -> Any:
        """Tag slots counted cluster-wide, in a Ray actor."""
        from fluvial.concurrency import RaySlotManager

        return RaySlotManager()

    def _owns(self, ref: Any) -> bool:
        return type(ref).__name__ == "ObjectRef"

    def _submit_options(self) -> Any:
        return _remote_options.get()

    def _launch(self, pairs: Sequence[tuple[Submission, RemoteFuture]], options: Any) -> None:
        for submission, future in pairs:
            remote = self._remote_for(submission.task_run.task, options)
            args = [self._backend_arg(u) for u in submission.upstreams]
            # one packed argument (Ray serializes each separately); upstream refs stay
            # top-level so that Ray resolves them on the worker
            status_ref, state_ref = remote.remote(
                (submission.task_run.detached(), submission.n_data), *args)
            future.backend_ref = state_ref
            self._watch(submission, future, status_ref)

    def _slots(self) -> int:
        when, cpus = self._cpus
        now = time.monotonic()
        if now - when > _SLOTS_REFRESH_SECONDS:  # the cluster may scale: count again
            try:
                cpus = max(1, int(_ray().cluster_resources().get("CPU", 1)))
            except Exception:  # noqa: BLE001 - keep the last count; the run goes on
                pass
            self._cpus = (now, cpus)
        return cpus

    def _check_options(self, task: Any, options: Any) -> None:
        self._remote_for(task, options)  # Ray checks them as it makes the remote function
        self._remote_for(task, options, batch=True)

    def _launch_batch(self, task: Any, pairs: Sequence[tuple[Submission, RemoteFuture]],
                      options: Any, done: Callable[[Any, BaseException | None], None]) -> None:
        remote = self._remote_for(task, options, batch=True)
        ref = remote.remote([s.task_run.detached() for s, _ in pairs])
        self._watcher_started().add(ref, done)

    def _remote_for(self, task: Any, options: Mapping[str, Any], batch: bool = False) -> Any:
        """The Ray remote function of ``task`` with ``options`` (the one that runs a
        batch of its runs with ``batch``), made once per runner.

        Ray exports a remote function to the cluster once and its workers cache it, so
        the task (function, hooks, options) crosses the wire once, not once per run."""
        key = (id(task), tuple(sorted(options.items())), batch)
        entry = self._remotes.get(key)
        if entry is None:
            # user code the workers cannot import travels by value (a script's folder,
            # a test directory: on the driver's sys.path only)
            ship_by_value(task.fn, *getattr(task, "on_completion_hooks", ()),
                          *getattr(task, "on_failure_hooks", ()),
                          *getattr(task, "on_running_hooks", ()),
                          picklers=_picklers())
            at_decoration = {k: v for k, v in options.items() if k in _REMOTE_ONLY}
            per_call = {k: v for k, v in options.items() if k not in _REMOTE_ONLY}
            try:
                entry_fn = _batch_entry_for(task) if batch else _entry_for(task)
                remote = _ray().remote(**at_decoration)(entry_fn) if at_decoration \
                    else _ray().remote(entry_fn)
                remote = remote.options(name=task.name, num_returns=1 if batch else 2,
                                        max_retries=0, retry_exceptions=False,
                                        **per_call)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"task {task.name!r}: Ray refused remote_options "
                                 f"{dict(options)}: {exc}") from exc
            entry = self._remotes[key] = (task, remote)
        return entry[1]

    def _watcher_started(self) -> _StatusWatcher:
        watcher = self._watcher
        if watcher is None:
            watcher = self._watcher = _StatusWatcher()
        return watcher

    def _watch(self, submission: Submission, future: RemoteFuture, status_ref: Any) -> None:
        def on_status(status: Any, exc: BaseException | None) -> None:
            if exc is not None:  # the worker died, or an upstream's did
                self._backend_done(future)
                self._on_backend_error(future, submission, exc)
                return
            state = _from_status(status)
            self._backend_done(future, None if state.start_ts is None
                               else max(0.0, state.ts - state.start_ts))
            future._report(state, submission)

        self._watcher_started().add(status_ref, on_status)

    def _gather_states(self, futures: list[RemoteFuture]) -> list[State]:
        try:
            values = _ray().get([f.backend_ref for f in futures])
        except Exception as exc:
            raise RunnerError(f"task results could not be fetched from Ray: {exc}") from exc
        return [f._state.copy(data=value)  # type: ignore[union-attr]
                for f, value in zip(futures, values, strict=True)]

    def _backend_arg(self, upstream: Future) -> Any:
        if self._launched_here(upstream):
            return upstream.backend_ref  # type: ignore[attr-defined]
        return _StateBox(upstream._final_state())  # a future of another runner


class _StatusWatcher:
    """One thread per runner that waits for many refs at once (``ray.wait``), fetches
    the ready ones with one ``ray.get`` and hands each value to its handler — cheaper
    than a callback per ref."""

    def __init__(self) -> None:
        self._pending: dict[Any, Callable[[Any, BaseException | None], None]] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="fluvial-ray-status",
                                        daemon=True)
        self._thread.start()

    def add(self, ref: Any, handler: Callable[[Any, BaseException | None], None]) -> None:
        with self._cond:
            self._pending[ref] = handler
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        ray = _ray()
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if self._closed:
                    return
                # the oldest runs first: ray.wait costs time in the number of refs
                refs = list(itertools.islice(self._pending, _WATCH_WINDOW))
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=_WATCH_INTERVAL)
            if not ready:
                continue
            with self._cond:
                handlers = [self._pending.pop(ref) for ref in ready]
            try:
                values = ray.get(ready)
            except BaseException:  # some failed: fetch one by one
                values = None
            for i, handler in enumerate(handlers):
                if values is not None:
                    _call(handler, values[i], None)
                    continue
                try:
                    value = ray.get(ready[i])
                except BaseException as exc:  # noqa: BLE001 - the handler reports it
                    _call(handler, None, exc)
                    continue
                _call(handler, value, None)


def _call(handler: Callable[[Any, BaseException | None], None], value: Any,
          exc: BaseException | None) -> None:
    try:
        handler(value, exc)
    except Exception:  # one broken handler must not stop the watcher
        logger.exception("settling a Ray task failed")


# options Ray takes only in @ray.remote(...), not in .options(...)
_REMOTE_ONLY = frozenset({"max_calls"})
_WATCH_INTERVAL = 0.01  # seconds: how long one ray.wait may gather completions
_WATCH_WINDOW = 512  # pending runs one ray.wait looks at (the oldest ones)
_SLOTS_REFRESH_SECONDS = 2.0

class _StateBox:
    """Travels instead of a plain result when a run did not complete (or comes from
    another runner): downstream runs see the state, not a value."""

    __slots__ = ("state",)

    def __init__(self, state: State) -> None:
        self.state = state

    def __reduce__(self) -> tuple[Any, ...]:
        return (_StateBox, (self.state,))


def _from_status(status: tuple) -> State:
    """The driver's state of a run from its status tuple (no result in it)."""
    type_value, name, message, ts, start_ts, error, *logs = status
    state = State(StateType(type_value), name, message, error, ts, start_ts)
    return with_logs(state, logs[0]) if logs and logs[0] else state


def _entry_for(task: Any) -> Any:
    """The function Ray runs for ``task``: the engine. It returns a small status tuple
    (what the driver watches) and the run's result as a plain value in Ray's object
    store — a ``_StateBox`` instead when the run did not complete."""

    def run(call: tuple, *upstream: Any) -> tuple[tuple, Any]:
        detached_run, n_data = call
        task_run = TaskRun.attached(task, detached_run)
        states = [u.state if type(u) is _StateBox else State(StateType.COMPLETED, data=u)
                  for u in upstream]
        state = run_in_worker(task_run, states, n_data, picklable=True)
        completed = state.type is StateType.COMPLETED
        status = (state.type.value, state.name, state.message, state.ts, state.start_ts,
                  None if completed else state.data, getattr(state, "logs", ()))
        return status, (state.data if completed else _StateBox(state))

    run.__name__ = run.__qualname__ = task.name
    return run


def _batch_entry_for(task: Any) -> Any:
    """The function Ray runs for a batch of independent runs of ``task``: their final
    states (with results) and the seconds the batch took."""

    def run_many(detached_runs: list[tuple]) -> tuple[list[State], float]:
        return run_batch(task, detached_runs)

    run_many.__name__ = run_many.__qualname__ = f"{task.name}-batch"
    return run_many
