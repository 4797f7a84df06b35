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
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fluvial.exceptions import RunnerError
from fluvial.runners._by_value import ship_by_value
from fluvial.runners._ray_local import init_ray
from fluvial.runners.base import require_extra
from fluvial.runners.remote import RemoteFuture, RemoteTaskRunner
from fluvial.runs import TaskRun
from fluvial.states import State, StateType
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
                 init_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__()
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a string like 'auto' or 'ray://host:10001', "
                            f"got {address!r}")
        if init_kwargs is not None and not isinstance(init_kwargs, dict):
            raise TypeError(f"init_kwargs must be a dict, got {type(init_kwargs).__name__}")
        self.address = address
        self.init_kwargs = dict(init_kwargs or {})
        self._owns_session = False
        self._watcher: _StatusWatcher | None = None
        self._remotes: dict[tuple, tuple[Any, Any]] = {}  # (id(task), options) -> (task, fn)

    def duplicate(self) -> RayTaskRunner:
        return RayTaskRunner(self.address, self.init_kwargs)

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

    def _remote_for(self, task: Any, options: Mapping[str, Any]) -> Any:
        """The Ray remote function of ``task`` with ``options``, made once per runner.

        Ray exports a remote function to the cluster once and its workers cache it, so
        the task (function, hooks, options) crosses the wire once, not once per run."""
        key = (id(task), tuple(sorted(options.items())))
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
                remote = _ray().remote(**at_decoration)(_entry_for(task)) if at_decoration \
                    else _ray().remote(_entry_for(task))
                remote = remote.options(name=task.name, num_returns=2,
                                        max_retries=0, retry_exceptions=False,
                                        **per_call)
            except (ValueError, TypeError) as exc:
                raise ValueError(f"task {task.name!r}: Ray refused remote_options "
                                 f"{dict(options)}: {exc}") from exc
            entry = self._remotes[key] = (task, remote)
        return entry[1]

    def _watch(self, submission: Submission, future: RemoteFuture, status_ref: Any) -> None:
        watcher = self._watcher
        if watcher is None:
            watcher = self._watcher = _StatusWatcher(self._on_backend_error)
        watcher.add(status_ref, submission, future)

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
    """One thread per runner that waits for many status refs at once (``ray.wait``) and
    settles their futures in batches — cheaper than a callback per ref."""

    def __init__(self, on_error: Any) -> None:
        self._on_error = on_error
        self._pending: dict[Any, tuple[Submission, RemoteFuture]] = {}
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="fluvial-ray-status",
                                        daemon=True)
        self._thread.start()

    def add(self, ref: Any, submission: Submission, future: RemoteFuture) -> None:
        with self._cond:
            self._pending[ref] = (submission, future)
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
                settled = [self._pending.pop(ref) for ref in ready]
            try:
                statuses = ray.get(ready)
            except BaseException:  # some failed: settle one by one
                statuses = None
            for i, (submission, future) in enumerate(settled):
                if statuses is not None:
                    future._report(_from_status(statuses[i]), submission)
                    continue
                try:
                    status = ray.get(ready[i])
                except BaseException as exc:  # the worker died, or an upstream's did
                    self._on_error(future, submission, exc)
                    continue
                future._report(_from_status(status), submission)


# options Ray takes only in @ray.remote(...), not in .options(...)
_REMOTE_ONLY = frozenset({"max_calls"})
_WATCH_INTERVAL = 0.01  # seconds: how long one ray.wait may gather completions
_WATCH_WINDOW = 512  # pending runs one ray.wait looks at (the oldest ones)

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
    type_value, name, message, ts, start_ts, error = status
    return State(StateType(type_value), name, message, error, ts, start_ts)


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
                  None if completed else state.data)
        return status, (state.data if completed else _StateBox(state))

    run.__name__ = run.__qualname__ = task.name
    return run
