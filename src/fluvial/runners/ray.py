"""``RayTaskRunner``: task runs on a Ray cluster.

With no ``address`` the runner uses the Ray session already initialised in this
process, or starts a local one with ``ray.init(**init_kwargs)`` (and shuts it down
when the flow ends); ``address="auto"`` or ``"ray://host:10001"`` joins a cluster.

Each task run is one Ray task with two returns: a small *status* (the run's state
without its result) and the *state* itself. The driver watches only the status; the
state stays in Ray's object store, and downstream runs receive it as an ``ObjectRef``
argument, so Ray moves results worker to worker. ``.result()`` fetches it. A run whose
upstream did not complete ends ``NotReady`` on the worker, through the same engine as
on every runner. A worker that dies is retried by Ray while the task has ``retries``
left (a crash counts as an attempt), then the run ends ``Crashed``.

``remote_options(num_cpus=..., num_gpus=..., resources=...)`` sets Ray resources for
the task runs submitted inside it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from fluvial.engine.task_engine import run_task
from fluvial.exceptions import MissingDependencyError, RunnerError
from fluvial.runners.remote import RemoteFuture, RemoteTaskRunner, picklable_state
from fluvial.states import State, StateType

if TYPE_CHECKING:
    from fluvial.engine.submission import Submission

__all__ = ["RayTaskRunner", "remote_options"]

logger = logging.getLogger("fluvial.runners.ray")

_remote_options: ContextVar[Mapping[str, Any]] = ContextVar(
    "fluvial_ray_options", default=MappingProxyType({})
)


def _ray() -> Any:
    try:
        import ray
    except ImportError as exc:  # pragma: no cover - exercised by the missing-extra test
        raise MissingDependencyError(
            "RayTaskRunner needs ray: pip install 'fluvial[ray]'"
        ) from exc
    return ray


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
        self._remote: Any = None

    def duplicate(self) -> RayTaskRunner:
        return RayTaskRunner(self.address, self.init_kwargs)

    def __repr__(self) -> str:
        return f"RayTaskRunner({self.address or 'local'})"

    def _start(self) -> None:
        ray = _ray()
        if not ray.is_initialized():
            kwargs = {"include_dashboard": False, "log_to_driver": True, **self.init_kwargs}
            try:
                ray.init(address=self.address, **kwargs)
            except ConnectionError as exc:
                raise RunnerError(f"RayTaskRunner cannot reach the Ray cluster at "
                                  f"{self.address!r}: {exc}") from exc
            self._owns_session = True
        self._remote = ray.remote(num_returns=2)(_run_on_ray)

    def _shutdown(self, wait: bool) -> None:
        self._remote = None
        if self._owns_session:
            self._owns_session = False
            _ray().shutdown()

    # -- submission (see RemoteTaskRunner) -------------------------------------------
    def _make_slot_manager(self) -> Any:
        from fluvial.concurrency import RaySlotManager

        return RaySlotManager()

    def _owns(self, ref: Any) -> bool:
        return type(ref).__name__ == "ObjectRef"

    def _submit_options(self) -> Any:
        return _remote_options.get()

    def _launch(self, pairs: Sequence[tuple[Submission, RemoteFuture]], options: Any) -> None:
        by_task: dict[int, Any] = {}
        for submission, future in pairs:
            task = submission.task_run.task
            remote = by_task.get(id(task))
            if remote is None:
                remote = by_task[id(task)] = self._remote.options(
                    name=task.name, num_returns=2, max_retries=task.retries,
                    retry_exceptions=False, **options)
            args = [self._backend_arg(u) for u in submission.upstreams]
            status_ref, state_ref = remote.remote(submission.task_run, submission.n_data, *args)
            future.backend_ref = state_ref
            self._watch(submission, future, status_ref)

    def _watch(self, submission: Submission, future: RemoteFuture, status_ref: Any) -> None:
        def on_done(done: Any) -> None:
            try:
                status = done.result()
            except BaseException as exc:  # the worker died, or an upstream's did
                self._on_backend_error(future, submission, exc)
                return
            future._complete(status)

        status_ref.future().add_done_callback(on_done)

    def _gather_states(self, refs: list[Any]) -> list[State]:
        try:
            return _ray().get(refs)
        except Exception as exc:
            raise RunnerError(f"task results could not be fetched from Ray: {exc}") from exc


def _run_on_ray(task_run: Any, n_data: int = 0, *upstream_states: State) -> tuple[State, State]:
    """The Ray task: run the engine; return (status without result, full state)."""
    state = picklable_state(task_run, run_task(task_run, upstream_states, n_data))
    if state.type is StateType.COMPLETED:
        return State(state.type, state.name, state.message, None, state.ts, state.start_ts), state
    return state, state
