"""What the cluster runners (Dask, Ray) share: the future of a run whose result stays
in the cluster, and handing runs to the backend in dependency order.

A ``RemoteFuture`` settles from a small status (its state without data); the result
itself is fetched only when someone asks for it (``result()``, ``state``). When a
backend reports an error for a run, the runner reports it ``Crashed`` (naming the
runner and the cause); the driver (``fluvial.orchestration.crashes``) decides what
that means — ``NotReady`` when an upstream did not complete, a retry while the task
has retries left. A run the driver resubmits gets a new backend reference, and its
future's ``generation`` goes up, so a dependent that went to the backend with the old
reference is known to have never run.
"""

from __future__ import annotations

import abc
import itertools
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fluvial.exceptions import TaskRunFailure
from fluvial.futures import Future
from fluvial.futures._base import dispatch_failed, guarded, when_settled
from fluvial.logging.shipping import record_shipped
from fluvial.runners._batches import MAX_BATCH, TARGET_BATCH_SECONDS, RemoteBatcher
from fluvial.runners.base import TaskRunner
from fluvial.runners.batching import BatchSizer
from fluvial.states import State, StateType
from fluvial.worker.entry import crash_state
from fluvial.worker.pickling import PickleCheck, picklable_state

if TYPE_CHECKING:
    from fluvial.runs import Submission

__all__ = [
    "PickleCheck",  # re-exported from fluvial.worker.pickling
    "RemoteFuture",
    "RemoteTaskRunner",
    "TaskRunFailure",
    "picklable_state",  # re-exported from fluvial.worker.pickling
]


class RemoteFuture(Future):
    """A future whose completed result lives in the cluster until it is asked for."""

    __slots__ = ("_gather", "_fetched", "upstreams", "backend_ref", "generation",
                 "launched_generation", "_siblings")

    def __init__(self, submission: Submission,
                 gather: Callable[[list[RemoteFuture]], list[State]]) -> None:
        super().__init__(submission.task_run, submission.subscriber)
        self.backend_ref: Any = None
        self._gather = gather  # fetches the full states of many futures in one go
        self._fetched: State | None = None
        self.upstreams = submission.upstreams
        self.generation = 0  # resubmissions of this run after a crash
        self.launched_generation: int | None = None  # upstream generations at launch
        self._siblings: _Siblings | None = None

    def _report(self, state: State, submission: Submission) -> None:
        record_shipped(state)  # the run's logs from its worker, once
        if state.type is not StateType.COMPLETED and submission.upstreams:
            pending = [u for u in submission.upstreams if u._state is None]
            if pending:  # an upstream may be in a crash retry: decide once it has settled
                when_settled(pending, lambda: self._report(state, submission))
                return
            subscriber = self._subscriber
            if self._stale(submission) and subscriber is not None \
                    and subscriber.crashed(self, state, submission):
                return  # it ran on an upstream's replaced reference: the driver resends it
        super()._report(state, submission)

    def _stale(self, submission: Submission) -> bool:
        """Whether this run went to the backend with an upstream reference that a crash
        retry of that upstream has since replaced."""
        launched = self.launched_generation
        return launched is not None and launched != sum(
            getattr(u, "generation", 0) for u in submission.upstreams)

    def _resubmitted(self, other: Future) -> None:
        if isinstance(other, RemoteFuture):  # dependents launched from now on use it
            self.backend_ref = other.backend_ref
            self._gather = other._gather
        self.generation += 1

    def _complete_from(self, other: Future) -> None:
        if isinstance(other, RemoteFuture):  # the resubmission's result stays where it is
            self.backend_ref = other.backend_ref
            self._gather = other._gather
            self._fetched = other._fetched
        super()._complete_from(other)

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


class RemoteTaskRunner(TaskRunner):
    """The submission logic of the cluster runners (Dask, Ray).

    A run whose upstreams were all launched on this backend goes to the backend at
    once, with the upstreams' backend references as arguments, so the cluster orders
    it. A run with ``allow_failure`` upstreams waits in the driver for them to settle,
    and a failed one is sent as its state (a backend would not run the dependent of
    an errored run). A run depending on a future of another runner (or on the
    driver's gate for its tag slots) waits for it and receives its state by value.
    """

    def __init__(self, max_in_flight: int | None = None) -> None:
        super().__init__(max_in_flight)
        self._check_pickle = PickleCheck()
        self._relaunches = itertools.count(1)
        self._sizer = BatchSizer(TARGET_BATCH_SECONDS, MAX_BATCH)
        self._batcher: RemoteBatcher | None = None

    def start(self) -> None:
        self._batcher = RemoteBatcher(self, self._sizer)
        super().start()

    def shutdown(self, wait: bool = True) -> None:
        batcher, self._batcher = self._batcher, None
        if batcher is not None and self._started:
            batcher.close()
        super().shutdown(wait)

    # -- what a backend provides ------------------------------------------------------
    @abc.abstractmethod
    def _owns(self, ref: Any) -> bool:
        """Whether ``ref`` is a backend reference of this runner's cluster."""

    @abc.abstractmethod
    def _launch(self, pairs: Sequence[tuple[Submission, RemoteFuture]], options: Any) -> None:
        """Hand runs to the backend; set each future's ``backend_ref`` and settle it later."""

    @abc.abstractmethod
    def _gather_states(self, futures: list[RemoteFuture]) -> list[State]:
        """Fetch the full states of completed futures (their results) in one request."""

    @abc.abstractmethod
    def _launch_batch(self, task: Any, pairs: Sequence[tuple[Submission, RemoteFuture]],
                      options: Any, done: Callable[[Any, BaseException | None], None]) -> None:
        """Run ``pairs`` (independent runs of ``task``) as one backend task
        (``fluvial.worker.batch.run_batch``); call ``done((states, seconds), None)``
        when it ends, or ``done(None, error)`` when the backend lost it."""

    @abc.abstractmethod
    def _slots(self) -> int:
        """How many runs the cluster runs at once (its worker threads / CPUs)."""

    def _submit_options(self) -> Any:
        """Backend options captured in the submitting thread (e.g. Ray resources)."""
        return None

    def _check_options(self, task: Any, options: Any) -> None:
        """Raise if the backend refuses ``options`` for ``task`` (before any is sent)."""

    def _backend_done(self, future: RemoteFuture, seconds: float | None = None) -> None:
        """Called by the backend's completion handler of a per-run task, before the run
        is reported: frees its place among the runs in flight (``seconds``: how long it
        ran on its worker, when the backend says)."""
        batcher = self._batcher
        if batcher is not None:
            batcher.backend_done(future, seconds)

    # -- shared ---------------------------------------------------------------------
    def submit(self, submission: Submission) -> Future:
        return self.submit_many([submission])[0]

    def submit_many(self, submissions: Sequence[Submission]) -> list[Future]:
        self._check_started()
        for submission in submissions:  # all or nothing: check them all first
            self._check_pickle(submission)
        options = self._submit_options()
        for task in {id(s.task_run.task): s.task_run.task for s in submissions}.values():
            self._check_options(task, options)
        futures: list[Future] = []
        now: list[tuple[Submission, RemoteFuture]] = []
        queued: list[tuple[Submission, RemoteFuture, Any]] = []
        for submission in submissions:
            future = RemoteFuture(submission, self._gather_states)
            futures.append(future)
            if not submission.upstreams:  # independent: batched with its siblings
                queued.append((submission, future, options))
            elif not submission.task_run.allowed_failures and all(
                    self._launched_here(u) for u in submission.upstreams):
                now.append((submission, future))
            else:
                self._launch_later(submission, future, options)
        if len(submissions) == 1 and queued:  # a lone .submit goes at once, per run:
            now.append(queued.pop()[:2])  # its dependents can follow it in the cluster
        if queued:
            assert self._batcher is not None
            self._batcher.add(queued)
        if now:
            try:
                self._go(now, options)
            except Exception as exc:  # e.g. options the backend refuses: no run may hang
                for _, future in now:
                    if future.backend_ref is None:
                        dispatch_failed(future, exc)
                raise
        return futures

    def _go(self, pairs: Sequence[tuple[Submission, RemoteFuture]], options: Any) -> None:
        for submission, future in pairs:
            if submission.upstreams:
                future.launched_generation = sum(getattr(u, "generation", 0)
                                                 for u in submission.upstreams)
        self._launch(pairs, options)

    def _launched_here(self, upstream: Future) -> bool:
        return isinstance(upstream, RemoteFuture) and upstream.backend_ref is not None \
            and self._owns(upstream.backend_ref)

    def _launch_later(self, submission: Submission, future: RemoteFuture, options: Any) -> None:
        """A run with an upstream of another runner (or the driver's gate for tag slots)
        waits in the driver until they have all settled."""
        when_settled(submission.upstreams,
                     guarded(future, lambda: self._go([(submission, future)], options)))

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
        """Report a run the backend says did not complete (without blocking)."""
        task_run = submission.task_run
        if isinstance(exc, TaskRunFailure) and exc.task_run_id == task_run.id:
            future._report(exc.state, submission)  # the run itself ended on the worker
            return
        message = (f"Task run {task_run.name!r} crashed on {self!r}: "
                   f"{type(exc).__name__}: {exc}")
        future._report(crash_state(task_run, message, exc), submission)

    def _unique_key(self, key: str, taken: Callable[[str], bool]) -> str:
        """``key``, or a fresh variant when the backend still holds it (a resubmission)."""
        return key if not taken(key) else f"{key}-{next(self._relaunches)}"

