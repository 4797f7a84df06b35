"""The task-runner contract, and the dependency gate shared by the local runners.

A runner moves work and data; it does not implement retries, caching, timeouts or
hooks (``fluvial.worker`` does, where the task runs). The contract is small:

* ``start()`` / ``shutdown()`` (or use it as a context manager);
* ``submit(submission, tracker) -> Future`` — hand over one task run with the futures
  it depends on; the runner must not occupy a worker until they are all done;
* ``submit_many(submissions, tracker)`` — the same for a batch (``Task.map``), which
  backends may send in one message;
* ``duplicate()`` — a fresh, unstarted runner with the same settings, for subflows.
"""

from __future__ import annotations

import abc
import importlib
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fluvial.exceptions import MissingDependencyError, RunnerError
from fluvial.futures import Future
from fluvial.orchestration.admission import Admission, guarded

if TYPE_CHECKING:
    from fluvial.context import FlowRunContext
    from fluvial.orchestration.tracking import RunTracker
    from fluvial.runs import Submission

__all__ = ["LocalTaskRunner", "TaskRunner", "checked_max_workers", "require_extra",
           "when_settled"]


def checked_max_workers(max_workers: Any, default: int) -> int:
    """``max_workers`` validated (a positive int), or ``default`` when it is None."""
    if max_workers is None:
        return default
    if isinstance(max_workers, bool) or not isinstance(max_workers, int):
        raise TypeError(f"max_workers must be an int, got {type(max_workers).__name__}")
    if max_workers <= 0:
        raise ValueError("max_workers must be greater than 0")
    return max_workers


def require_extra(module: str, runner: str, extra: str) -> Any:
    """Import an optional dependency, or raise the install command for its extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingDependencyError(
            f"{runner} needs {module}: pip install 'fluvial[{extra}]'") from exc


def _host_slot_manager() -> Any:
    from fluvial.concurrency import get_slot_manager

    return get_slot_manager()


class TaskRunner(abc.ABC):
    """Where task runs execute."""

    def __init__(self) -> None:
        self._started = False
        self._flow_ctx: FlowRunContext | None = None

    @property
    def name(self) -> str:
        return type(self).__name__

    @property
    def started(self) -> bool:
        return self._started

    def start(self) -> None:
        if self._started:
            raise RunnerError(f"{self.name} is already started")
        self._start()
        self._started = True

    def shutdown(self, wait: bool = True) -> None:
        if self._started:
            self._started = False
            self._shutdown(wait)

    def __enter__(self) -> TaskRunner:
        self.start()
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    def _check_started(self) -> None:
        if not self._started:
            raise RunnerError(f"{self.name} is not started (or was shut down); use it inside a flow "
                              "or as a context manager")

    @abc.abstractmethod
    def _start(self) -> None: ...

    @abc.abstractmethod
    def _shutdown(self, wait: bool) -> None: ...

    @abc.abstractmethod
    def submit(self, submission: Submission, tracker: RunTracker | None) -> Future: ...

    def submit_many(
        self, submissions: Sequence[Submission], tracker: RunTracker | None
    ) -> list[Future]:
        return [self.submit(s, tracker) for s in submissions]

    @abc.abstractmethod
    def duplicate(self) -> TaskRunner: ...

    def __repr__(self) -> str:
        return f"{self.name}()"


def when_settled(upstreams: Sequence[Future], then: Callable[[], None]) -> None:
    """Call ``then()`` once every future in ``upstreams`` is done (at once if they are)."""
    pending = [u for u in upstreams if u._state is None]
    if not pending:
        then()
        return
    remaining = [len(pending)]
    lock = threading.Lock()

    def on_upstream_done(_: Future) -> None:
        with lock:
            remaining[0] -= 1
            ready = remaining[0] == 0
        if ready:
            then()

    for upstream in pending:
        upstream.add_done_callback(on_upstream_done)


class LocalTaskRunner(TaskRunner):
    """A runner whose driver keeps dependency counts: a run is dispatched only once its
    upstream futures are all done and it holds its tag slots (threads, processes).
    Subclasses implement ``_dispatch(submission, future)``, called when the run is ready."""

    def __init__(self) -> None:
        super().__init__()
        self._admission = Admission(_host_slot_manager)

    def _new_future(self, submission: Submission, tracker: RunTracker | None) -> Future:
        return Future(submission.task_run, tracker)

    def submit(self, submission: Submission, tracker: RunTracker | None) -> Future:
        self._check_started()
        future = self._new_future(submission, tracker)
        if tracker is not None:
            tracker.submitted()
        if submission.task_run.tags:
            def admit() -> None:
                self._admission.admit(submission.task_run, future,
                                      lambda: self._dispatch(submission, future))
            ready = guarded(future, admit)
        else:
            ready = guarded(future, lambda: self._dispatch(submission, future))
        if submission.upstreams:
            when_settled(submission.upstreams, ready)
        else:
            ready()
        return future

    @abc.abstractmethod
    def _dispatch(self, submission: Submission, future: Future) -> None: ...
