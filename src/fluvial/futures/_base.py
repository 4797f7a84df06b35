"""The one future type of fluvial, and the waiting helpers around it.

Runners complete a ``Future`` with a final ``State``; everything else — waiting,
callbacks, ``wait()`` and ``as_completed()`` — is written once here. A future
allocates a ``threading.Event`` only when somebody actually blocks on it, so the
millions of futures nobody waits on cost a few attributes each.

A future reports its settlement to one *subscriber* the driver registered on the
``Submission`` before handing it to a runner (the flow run's tracker): ``settled``
when the run has its final state, and ``crashed`` when a runner reports a crash, so
that the driver — not the runner — decides whether the run is retried. Runners call
``_report(state, submission)``; nothing in this module knows about tracking or
recording.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from uuid import UUID

from fluvial.states import State, StateType

if TYPE_CHECKING:
    from fluvial.runs import Submission, TaskRun

__all__ = ["DoneAndNotDoneFutures", "Future", "FutureList", "PrefectFuture", "PrefectFutureList",
           "Subscriber", "as_completed", "guarded", "resolve_futures_to_results",
           "resolve_futures_to_states", "wait", "when_settled"]

_LOCK = threading.Lock()  # guards lazy events and callback lists of every future

# A pool thread that blocks on a future would hold a worker the future may need (a task
# waiting on a task it submitted, with one worker). Runners whose worker threads can run
# queued work install a helper here; ``wait`` then runs ready work while it waits.
worker_thread = threading.local()


class Subscriber(Protocol):
    """What the driver registers on a submission to hear how its run settles."""

    def settled(self, future: Future) -> None:
        """``future`` has its final state (called once, before done-callbacks)."""

    def crashed(self, future: Future, state: State, submission: Submission) -> bool:
        """A runner reports that the run crashed (``state``); True when the driver took
        it over (it resubmits ``submission`` and settles ``future`` later)."""


class Future:
    """The eventual final state of one task run."""

    __slots__ = ("task_run", "_state", "_event", "_callbacks", "_subscriber", "_observed",
                 "__weakref__")

    def __init__(self, task_run: TaskRun, subscriber: Subscriber | None = None) -> None:
        self.task_run = task_run
        self._state: State | None = None
        self._event: threading.Event | None = None
        self._callbacks: list[Callable[[Future], Any]] | None = None
        self._subscriber = subscriber
        self._observed = False

    @classmethod
    def of(cls, submission: Submission) -> Future:
        """The future of ``submission``, reporting to the subscriber the driver set on it."""
        return cls(submission.task_run, submission.subscriber)

    @property
    def task_run_id(self) -> UUID:
        return self.task_run.id

    @property
    def task_name(self) -> str:
        return self.task_run.task.name

    # -- backend side --------------------------------------------------------
    def _complete(self, state: State) -> None:
        """Settle this future with its final state (called once, by the runner)."""
        with _LOCK:
            if self._state is not None:
                return
            self._state = state
            event, callbacks = self._event, self._callbacks
            self._callbacks = None
        if event is not None:
            event.set()
        if self._subscriber is not None:
            self._subscriber.settled(self)
        if callbacks:
            for fn in callbacks:
                _run_callback(fn, self)

    def _report(self, state: State, submission: Submission) -> None:
        """How a runner ends a run: a crash goes to the driver first (it may retry the
        run, and then settles this future later); any other state settles it."""
        if state.type is StateType.CRASHED:
            subscriber = self._subscriber
            if subscriber is not None and subscriber.crashed(self, state, submission):
                return
        self._complete(state)

    def _resubmitted(self, other: Future) -> None:
        """The driver resubmitted this run; ``other`` is the new submission's future."""

    def _complete_from(self, other: Future) -> None:
        """Settle this future as ``other`` (a resubmission of the same run) settled."""
        assert other._state is not None
        self._complete(other._state)

    def _final_state(self) -> State:
        """The full final state; remote futures override this to fetch data lazily."""
        assert self._state is not None
        return self._state

    @staticmethod
    def _prefetch(futures: list[Future]) -> None:
        """Fetch many results at once where a backend can (remote futures override)."""

    @staticmethod
    def _group(futures: list[Future]) -> None:
        """Note that ``futures`` belong together (a ``FutureList``), so fetching the result
        of one may fetch its completed siblings' too (remote futures override)."""

    # -- user side -------------------------------------------------------------
    def done(self) -> bool:
        return self._state is not None

    def wait(self, timeout: float | None = None) -> None:
        """Block until the run has a final state, or ``timeout`` seconds pass."""
        self._observed = True
        if self._state is not None:
            return
        helper = getattr(worker_thread, "help_until_done", None)
        if helper is not None:
            helper(self, timeout)
            return
        self._block(timeout)

    def _block(self, timeout: float | None) -> None:
        """Wait on this future's event (made on first need)."""
        if self._state is not None:
            return
        with _LOCK:
            if self._state is not None:
                return
            if self._event is None:
                self._event = threading.Event()
            event = self._event
        event.wait(timeout)

    @property
    def state(self) -> State:
        """The final state if the run has ended, else a ``Pending`` state."""
        self._observed = True
        if self._state is None:
            return State(StateType.PENDING, "Pending")
        state = self._final_state()
        if state.run_id is None:
            state.run_id = self.task_run.id
        return state

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> Any:
        """The task's return value; re-raises the task's exception if it failed."""
        self.wait(timeout)
        if self._state is None:
            raise TimeoutError(
                f"Task run {self.task_name!r} ({self.task_run_id}) did not finish within {timeout} s"
            )
        return self._final_state().result(raise_on_failure=raise_on_failure)

    def add_done_callback(self, fn: Callable[[Future], Any]) -> None:
        """Call ``fn(future)`` when the run ends (at once if it already has)."""
        with _LOCK:
            if self._state is None:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(fn)
                return
        _run_callback(fn, self)

    def __repr__(self) -> str:
        status = self._state.name if self._state is not None else "Pending"
        return f"<Future {self.task_name!r} {status}>"


PrefectFuture = Future


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


def dispatch_failed(future: Future, exc: BaseException) -> None:
    """End ``future``'s run ``Crashed``: it could not be dispatched (no-op once settled)."""
    from fluvial.exceptions import CrashedRun
    from fluvial.states import Crashed

    if future.done():
        return
    message = (f"Task run {future.task_run.name!r} could not be dispatched: "
               f"{type(exc).__name__}: {exc}")
    error = CrashedRun(message)
    error.__cause__ = exc
    future._complete(Crashed(error, message))


def guarded(future: Future, dispatch: Callable[[], None]) -> Callable[[], None]:
    """``dispatch`` such that an exception it raises ends ``future``'s run instead of
    escaping into a callback thread (where it would be lost and the run never settle)."""
    def call() -> None:
        try:
            dispatch()
        except Exception as exc:  # noqa: BLE001 - becomes the run's final state
            dispatch_failed(future, exc)

    return call


def _run_callback(fn: Callable[[Future], Any], future: Future) -> None:
    try:
        fn(future)
    except Exception:
        logging.getLogger("fluvial").exception("done-callback %r of %r raised", fn, future)


class FutureList(list[Future]):
    """The futures of a ``Task.map``, with ``result()`` and ``wait()`` over all of them.

    On a cluster runner, asking one future of the list for its result also fetches the
    results of its siblings that have completed, in the same request, so
    ``[f.result() for f in futures]`` costs about what ``futures.result()`` does.
    """

    def __init__(self, futures: Iterable[Future] = ()) -> None:
        super().__init__(futures)
        for cls in {type(f) for f in self}:
            cls._group(self)

    def wait(self, timeout: float | None = None) -> None:
        wait(self, timeout=timeout)

    def result(self, timeout: float | None = None, raise_on_failure: bool = True) -> list[Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        if wait(self, timeout).not_done:
            raise TimeoutError(f"{len(self)} futures did not all finish within {timeout} s")
        for cls in {type(f) for f in self}:
            cls._prefetch(self)
        out = []
        for future in self:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            out.append(future.result(remaining, raise_on_failure=raise_on_failure))
        return out


PrefectFutureList = FutureList

_PLAIN = frozenset({int, float, str, bytes, bool, type(None), complex})


def _replace_futures(value: Any, found: list[Future] | None, swap: Callable[[Future], Any]) -> Any:
    """``value`` with every future inside it (lists, tuples, sets, dicts, nested) collected
    into ``found`` (first pass) or replaced by ``swap(future)`` (second pass)."""
    if type(value) in _PLAIN:
        return value
    if isinstance(value, Future):
        if found is not None:
            found.append(value)
            return value
        return swap(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        if found is not None:
            for v in value:
                if type(v) not in _PLAIN:
                    _replace_futures(v, found, swap)
            return value
        items = [_replace_futures(v, found, swap) for v in value]
        if isinstance(value, tuple) and hasattr(value, "_fields"):  # a named tuple
            return type(value)(*items)
        if isinstance(value, FutureList):  # its futures are states now: a plain list
            return items
        return type(value)(items)
    if isinstance(value, dict):
        pairs = {k: _replace_futures(v, found, swap) for k, v in value.items()}
        return value if found is not None else type(value)(pairs)
    return value


def resolve_futures_to_states(value: Any) -> Any:
    """``value`` with every future in it (also inside lists, tuples, sets and dicts) waited
    for and replaced by its final ``State``."""
    found: list[Future] = []
    _replace_futures(value, found, lambda f: f)
    if not found:
        return value
    wait(found)

    def final(future: Future) -> State:
        state = future._final_state()
        if state.run_id is None:
            state.run_id = future.task_run.id
        return state

    return _replace_futures(value, None, final)


def resolve_futures_to_results(value: Any) -> Any:
    """``value`` with every future in it (also inside lists, tuples, sets and dicts) waited
    for and replaced by its result; a failed one raises its exception."""
    found: list[Future] = []
    _replace_futures(value, found, lambda f: f)
    if not found:
        return value
    wait(found)
    for cls in {type(f) for f in found}:
        cls._prefetch(found)
    return _replace_futures(value, None, lambda f: f.result())


class DoneAndNotDoneFutures(NamedTuple):
    done: set[Future]
    not_done: set[Future]


def wait(futures: Iterable[Future], timeout: float | None = None) -> DoneAndNotDoneFutures:
    """Wait until every future is done or ``timeout`` passes; return ``(done, not_done)``."""
    futures = list(futures)
    deadline = None if timeout is None else time.monotonic() + timeout
    for future in futures:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        future.wait(remaining)
        if deadline is not None and time.monotonic() >= deadline:
            break
    done = {f for f in futures if f.done()}
    return DoneAndNotDoneFutures(done, set(futures) - done)


def as_completed(futures: Iterable[Future], timeout: float | None = None) -> Iterator[Future]:
    """Yield futures as they finish; raise ``TimeoutError`` if ``timeout`` passes first.

    A streaming map (``FutureStream``) is consumed as it goes: its futures are not
    all collected first."""
    streaming = getattr(futures, "_stream_as_completed", None)
    if streaming is not None:
        yield from streaming(timeout)
        return
    pending = set(futures)
    finished: queue.SimpleQueue[Future] = queue.SimpleQueue()
    for future in pending:
        future.add_done_callback(finished.put)
    deadline = None if timeout is None else time.monotonic() + timeout
    while pending:
        remaining = None if deadline is None else deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError(f"{len(pending)} (of the) futures did not finish within {timeout} s")
        try:
            future = finished.get(timeout=remaining)
        except queue.Empty:
            raise TimeoutError(
                f"{len(pending)} (of the) futures did not finish within {timeout} s"
            ) from None
        future._observed = True
        pending.discard(future)
        yield future
