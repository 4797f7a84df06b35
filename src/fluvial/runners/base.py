"""The task-runner contract, and the dependency gate shared by the local runners.

A runner moves work and data, nothing else: the task engine (``fluvial.worker``) runs
retries, caching, timeouts and hooks where the task runs, and the driver
(``fluvial.orchestration``) does tracking, recording, tag-slot admission and crash
retries. The contract is the size of ``concurrent.futures.Executor``:

* ``start()`` / ``shutdown()`` (or use it as a context manager);
* ``submit(submission) -> Future`` — hand over one task run with the futures it
  depends on; the runner must not occupy a worker until they are all done, and
  reports the run's final state with ``future._report(state, submission)``;
* ``submit_many(submissions) -> list[Future]`` — the same for a batch (``Task.map``),
  which backends may send in one message; it refuses the whole batch (raises) or
  accepts all of it, never part;
* ``duplicate()`` — a fresh, unstarted runner with the same settings, for subflows;
* ``slot_manager()`` — where tag slots are counted for this runner's workers (the
  host's by default; cluster runners count them cluster-wide).

Every runner also takes ``max_in_flight=`` (default None): the bound of a streaming
``Task.map`` over an iterator on it when the map does not give one
(``fluvial.orchestration.streaming``); None leaves such maps eager, as in Prefect.

Every runner runs a task through ``fluvial.worker.entry.run_in_worker``.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from fluvial._options import check_max_in_flight
from fluvial.exceptions import MissingDependencyError, RunnerError
from fluvial.futures import Future
from fluvial.futures._base import dispatch_failed, guarded, when_settled

if TYPE_CHECKING:
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


class TaskRunner(abc.ABC):
    """Where task runs execute."""

    def __init__(self, max_in_flight: int | None = None) -> None:
        self._started = False
        #: the default bound of a streaming map over an iterator on this runner
        self.max_in_flight = check_max_in_flight(type(self).__name__, max_in_flight)

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
    def submit(self, submission: Submission) -> Future: ...

    def submit_many(self, submissions: Sequence[Submission]) -> list[Future]:
        return [self.submit(s) for s in submissions]

    @abc.abstractmethod
    def duplicate(self) -> TaskRunner: ...

    def slot_manager(self) -> Any:
        """The slot manager that counts tag slots for this runner's workers."""
        from fluvial.concurrency import get_slot_manager

        return get_slot_manager()

    def __repr__(self) -> str:
        return f"{self.name}()"


class LocalTaskRunner(TaskRunner):
    """A runner whose driver keeps dependency counts: a run is dispatched only once its
    upstream futures are all done (threads, processes). Subclasses implement
    ``_dispatch(submission, future, captured)``, called when the run is ready with what
    ``_capture()`` returned in the submitting thread, and may override
    ``_dispatch_many`` to take a batch of runs that are ready at once in one step."""

    def submit(self, submission: Submission) -> Future:
        return self.submit_many((submission,))[0]

    def submit_many(self, submissions: Sequence[Submission]) -> list[Future]:
        self._check_started()
        captured = self._capture()
        futures: list[Future] = []
        ready: list[tuple[Submission, Future]] = []
        dispatch = self._dispatch
        for submission in submissions:
            future = Future.of(submission)
            futures.append(future)
            if submission.upstreams:
                when_settled(submission.upstreams,
                             guarded(future, partial(dispatch, submission, future, captured)))
            else:
                ready.append((submission, future))
        if ready:
            try:
                self._dispatch_many(ready, captured)
            except Exception as exc:  # noqa: BLE001 - each run ends Crashed, as one would
                for _, future in ready:
                    dispatch_failed(future, exc)
        return futures

    def _capture(self) -> Any:
        """What the submitting thread hands to the run (nothing, by default)."""
        return None

    @abc.abstractmethod
    def _dispatch(self, submission: Submission, future: Future, captured: Any) -> None: ...

    def _dispatch_many(self, ready: list[tuple[Submission, Future]], captured: Any) -> None:
        """Dispatch runs that are all ready now (one ``_dispatch`` each, by default)."""
        for submission, future in ready:
            guarded(future, partial(self._dispatch, submission, future, captured))()
