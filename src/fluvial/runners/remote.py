"""What the out-of-process runners share: checking that a run can be pickled before it
leaves the driver, and the future of a run whose result stays in a cluster.

A ``RemoteFuture`` settles from a small status (its state without data); the result
itself is fetched only when someone asks for it (``result()``, ``state``). When a
backend reports an error for a run, the runner asks ``settle_error``: if one of the
run's upstreams did not complete, the run ends ``NotReady`` naming it (the backend
never ran it); otherwise it ends ``Crashed``, naming the runner and the cause.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import cloudpickle

from fluvial.exceptions import CrashedRun, SerializationFailure, TaskRunFailure
from fluvial.futures import Future
from fluvial.orchestration.admission import Admission, dispatch_failed, guarded
from fluvial.runners.base import TaskRunner, when_settled
from fluvial.states import Crashed, Failed, State, StateType
from fluvial.worker.arguments import ATOMIC as _ATOMIC
from fluvial.worker.arguments import Upstream
from fluvial.worker.task_engine import upstream_failure

if TYPE_CHECKING:
    from fluvial.orchestration.tracking import RunTracker
    from fluvial.runs import Submission, TaskRun

__all__ = [
    "PickleCheck",
    "RemoteFuture",
    "RemoteTaskRunner",
    "TaskRunFailure",
    "picklable_state",
    "settle_error",
]


class RemoteFuture(Future):
    """A future whose completed result lives in the cluster until it is asked for."""

    __slots__ = ("_gather", "_fetched", "upstreams", "backend_ref", "_siblings")

    def __init__(self, task_run: TaskRun, tracker: RunTracker | None,
                 backend_ref: Any, gather: Callable[[list[RemoteFuture]], list[State]],
                 upstreams: list[Future]) -> None:
        super().__init__(task_run, tracker)
        self.backend_ref = backend_ref
        self._gather = gather  # fetches the full states of many futures in one go
        self._fetched: State | None = None
        self.upstreams = upstreams
        self._siblings: _Siblings | None = None

    def _final_state(self) -> State:
        state = self._state
        assert state is not None
        if state.type is not StateType.COMPLETED:
            return state
        if self._fetched is None:
            siblings = self._siblings
            if siblings is not None:
                siblings.fetch_with(self)
            if self._fetched is None:
                self._fetched = self._gather([self])[0]
        return self._fetched

    @staticmethod
    def _group(futures: list[Future]) -> None:
        siblings = _Siblings(futures)
        for future in futures:
            if isinstance(future, RemoteFuture):
                future._siblings = siblings

    @staticmethod
    def _prefetch(futures: list[Future]) -> None:
        """Fetch the results of many completed remote futures with one request per backend."""
        groups: dict[Any, list[RemoteFuture]] = {}
        for future in futures:
            if (isinstance(future, RemoteFuture) and future._fetched is None
                    and future._state is not None
                    and future._state.type is StateType.COMPLETED):
                groups.setdefault(future._gather, []).append(future)
        for gather, members in groups.items():
            states = gather(members)
            for future, state in zip(members, states, strict=True):
                future._fetched = state


class _Siblings:
    """The futures of one ``FutureList``: when one needs its result, the completed ones
    whose results are still in the cluster come along in the same request.

    Users read a list in order (``[f.result() for f in futures]``), usually faster than
    the cluster completes it: fetching at each catch-up would make one small request per
    few runs. So a fetch first waits (at most ``_LOOKAHEAD_SECONDS``) for the next
    ``ahead`` futures of the list, which doubles with each fetch: a list of 10 000 is
    read in a few dozen requests, and the first result still comes at once.
    """

    __slots__ = ("futures", "start", "ahead", "index")

    def __init__(self, futures: list[Future]) -> None:
        self.futures = futures
        self.start = 0  # futures before this index need nothing more fetched
        self.ahead = 1
        self.index = {id(f): i for i, f in enumerate(futures)}

    def fetch_with(self, future: RemoteFuture) -> None:
        futures = self.futures
        position = self.index.get(id(future))
        if position is not None:
            deadline = time.monotonic() + _LOOKAHEAD_SECONDS
            for sibling in futures[position + 1:position + 1 + self.ahead]:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                sibling._block(remaining)
            self.ahead = min(2 * self.ahead, len(futures))
        i = self.start
        while i < len(futures) and _settled(futures[i]):
            i += 1
        self.start = i
        batch = [f for f in futures[i:] if f is not future and not _settled(f)
                 and f._state is not None]
        RemoteFuture._prefetch([future, *batch])


_LOOKAHEAD_SECONDS = 0.5


def _settled(future: Future) -> bool:
    """Whether nothing is left to fetch for ``future`` (fetched, or not completed)."""
    state = future._state
    if state is None:
        return False
    if state.type is not StateType.COMPLETED:
        return True
    return not isinstance(future, RemoteFuture) or future._fetched is not None


def settle_error(future: RemoteFuture, task_run: TaskRun, exc: BaseException,
                 runner_name: str) -> None:
    """Settle ``future`` after its backend reported ``exc`` (without blocking)."""
    if isinstance(exc, TaskRunFailure) and exc.task_run_id == task_run.id:
        future._complete(exc.state)  # the run itself failed, on the worker
        return
    pending = [u for u in future.upstreams if u._state is None]
    if pending:  # decide once every upstream has settled
        when_settled(pending, lambda: settle_error(future, task_run, exc, runner_name))
        return
    for upstream in future.upstreams:
        state = upstream._state
        if state is not None and state.type is not StateType.COMPLETED:
            future._complete(upstream_failure(task_run, upstream.task_name, state))
            return
    message = (f"Task run {task_run.name!r} crashed on {runner_name}: "
               f"{type(exc).__name__}: {exc}")
    error = CrashedRun(message)
    error.__cause__ = exc
    future._complete(Crashed(error, message))


def picklable_state(task_run: TaskRun, state: State) -> State:
    """On a worker: ``state``, or a ``Failed`` state naming the task and its return value
    when the result could not be pickled to move it (checked before the backend tries,
    so the run is not lost to an opaque backend error). Plain scalars skip the check."""
    data = state.data
    if type(data) in _ATOMIC:
        return state
    try:
        cloudpickle.dumps(data)
    except Exception as exc:
        what = "return value" if state.type is StateType.COMPLETED else "exception"
        error = SerializationFailure(
            f"task {task_run.task.name!r}: its {what} ({type(data).__name__}) cannot be "
            f"pickled to move it off the worker: {exc}")
        return Failed(error, str(error))
    return state


_PLAIN = _ATOMIC | {Upstream}


class PickleCheck:
    """Fail fast, in the driver, on a task or argument that cannot be pickled."""

    def __init__(self) -> None:
        self._checked_tasks: set[int] = set()

    def __call__(self, submission: Submission) -> None:
        task_run = submission.task_run
        task = task_run.task
        if id(task) not in self._checked_tasks:
            try:
                cloudpickle.dumps(task)
            except Exception as exc:
                raise SerializationFailure(
                    f"task {task.name!r} cannot be pickled to send it to a worker: {exc}"
                ) from exc
            self._checked_tasks.add(id(task))
        if all(type(a) in _PLAIN for a in task_run.args) and all(
            type(v) in _PLAIN for v in task_run.kwargs.values()
        ):
            return  # scalars and upstream markers: nothing that could fail to pickle
        try:
            cloudpickle.dumps((task_run.args, task_run.kwargs))
        except Exception as exc:
            raise SerializationFailure(_name_unpicklable(task_run, exc)) from exc


def _name_unpicklable(task_run: TaskRun, exc: Exception) -> str:
    for name, value in task_run.parameters.items():
        try:
            cloudpickle.dumps(value)
        except Exception:
            return (f"task {task_run.task.name!r}: parameter {name!r} ({type(value).__name__}) "
                    f"cannot be pickled to send it to a worker: {exc}")
    return f"task {task_run.task.name!r}: its arguments cannot be pickled: {exc}"


class RemoteTaskRunner(TaskRunner):
    """The submission logic of the cluster runners (Dask, Ray).

    A run whose upstreams were all launched on this backend goes to the backend at
    once, with the upstreams' backend references as arguments, so the cluster orders
    it. A run with ``allow_failure`` upstreams waits in the driver for them to settle,
    and a failed one is sent as its state (a backend would not run the dependent of
    an errored run). A tagged run first waits in the driver for its upstreams to settle and for
    its tag slots (cluster-wide slot manager); a run depending on a future of another
    runner waits for that future and receives its state by value.
    """

    def __init__(self) -> None:
        super().__init__()
        self._check_pickle = PickleCheck()
        self._admission = Admission(self._make_slot_manager)

    # -- what a backend provides ------------------------------------------------------
    @abc.abstractmethod
    def _make_slot_manager(self) -> Any:
        """The cluster-wide slot manager for tag limits."""

    @abc.abstractmethod
    def _owns(self, ref: Any) -> bool:
        """Whether ``ref`` is a backend reference of this runner's cluster."""

    @abc.abstractmethod
    def _launch(self, pairs: Sequence[tuple[Submission, RemoteFuture]], options: Any) -> None:
        """Hand runs to the backend; set each future's ``backend_ref`` and settle it later."""

    @abc.abstractmethod
    def _gather_states(self, futures: list[RemoteFuture]) -> list[State]:
        """Fetch the full states of completed futures (their results) in one request."""

    def _submit_options(self) -> Any:
        """Backend options captured in the submitting thread (e.g. Ray resources)."""
        return None

    # -- shared ---------------------------------------------------------------------
    def submit(self, submission: Submission, tracker: RunTracker | None) -> Future:
        return self.submit_many([submission], tracker)[0]

    def submit_many(self, submissions: Sequence[Submission],
                    tracker: RunTracker | None) -> list[Future]:
        self._check_started()
        for submission in submissions:
            self._check_pickle(submission)
        options = self._submit_options()
        futures: list[Future] = []
        now: list[tuple[Submission, RemoteFuture]] = []
        for submission in submissions:
            task_run = submission.task_run
            future = RemoteFuture(task_run, tracker, None, self._gather_states,
                                  submission.upstreams)
            if tracker is not None:
                tracker.submitted()
            futures.append(future)
            if task_run.tags or task_run.allowed_failures or not all(
                    self._launched_here(u) for u in submission.upstreams):
                self._launch_later(submission, future, options)
            else:
                now.append((submission, future))
        if now:
            try:
                self._launch(now, options)
            except Exception as exc:  # e.g. options the backend refuses: no run may hang
                for _, future in now:
                    if future.backend_ref is None:
                        dispatch_failed(future, exc)
                raise
        return futures

    def _launched_here(self, upstream: Future) -> bool:
        return isinstance(upstream, RemoteFuture) and upstream.backend_ref is not None \
            and self._owns(upstream.backend_ref)

    def _launch_later(self, submission: Submission, future: RemoteFuture, options: Any) -> None:
        def launch() -> None:
            self._launch([(submission, future)], options)

        if submission.task_run.tags:
            def admit() -> None:
                self._admission.admit(submission.task_run, future, launch)
            ready = guarded(future, admit)
        else:
            ready = guarded(future, launch)
        when_settled(submission.upstreams, ready)

    def _backend_arg(self, upstream: Future) -> Any:
        """What a downstream run receives for ``upstream``: a backend reference, or the
        (settled) state itself for a future of another runner."""
        state = upstream._state
        if self._launched_here(upstream) and (state is None
                                              or state.type is StateType.COMPLETED):
            return upstream.backend_ref  # type: ignore[attr-defined]
        return upstream._final_state()  # settled elsewhere, or failed: its state by value

    def _on_backend_error(self, future: RemoteFuture, submission: Submission,
                          exc: BaseException) -> None:
        settle_error(future, submission.task_run, exc, repr(self))
