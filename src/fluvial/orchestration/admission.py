"""Admission before dispatch: a tagged task run takes its tag slots in the driver before
it is handed to a worker, and gives them back when its future settles — completed,
failed, crashed, cancelled or timed out — so no worker ever sits blocked on a slot and
a slot held by a run whose worker died comes back with the run's final state.

Runs with the same tag set queue here, in submission order, with at most one request
outstanding at the slot manager for the head of the queue. When a run settles and
others of the same tags are waiting in this driver, its slots are handed straight to
the next one (no round trip to the manager, no thread wake-up) — at most
``HANDOFFS`` times in a row, after which they are released to the manager and asked
for again, so drivers in other processes waiting on the same limit get their turn.

Untagged runs skip all of this (one attribute test). Tags without a limit are granted
synchronously by the slot manager, at the cost of a dictionary lookup.

An exception while dispatching (the slot manager cannot open its files, the runner
cannot hand the run over) never leaves a run pending: ``guarded`` ends the affected
runs ``Crashed`` with the cause, so the flow waiting on them ends too.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fluvial.futures._base import dispatch_failed, guarded

if TYPE_CHECKING:
    from fluvial.futures import Future
    from fluvial.runs import TaskRun

__all__ = ["Admission", "dispatch_failed", "guarded"]  # the last two: fluvial.futures

HANDOFFS = 64  # runs one lease may serve in a row before it goes back to the manager

_Waiting = tuple["Future", Callable[[], None]]


class _TagQueue:
    __slots__ = ("names", "waiting", "requested")

    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.waiting: deque[_Waiting] = deque()
        self.requested = False  # a request for the head is outstanding at the manager


class Admission:
    """Takes tag slots for task runs from one slot manager (made on first need)."""

    def __init__(self, make_manager: Callable[[], Any]) -> None:
        self._make_manager = make_manager
        self._manager: Any = None
        self._queues: dict[frozenset[str], _TagQueue] = {}
        self._lock = threading.Lock()

    @property
    def manager(self) -> Any:
        if self._manager is None:
            self._manager = self._make_manager()
        return self._manager

    def admit(self, task_run: TaskRun, future: Future, dispatch: Callable[[], None]) -> None:
        """Call ``dispatch()`` once ``task_run`` holds a slot of each of its tags."""
        key = task_run.tags
        with self._lock:
            queue = self._queues.get(key)
            if queue is None:
                queue = self._queues[key] = _TagQueue(sorted(key))
            queue.waiting.append((future, dispatch))
            if queue.requested or len(queue.waiting) > 1:
                return  # runs ahead of this one are waiting: keep submission order
            queue.requested = True
        self._request(queue)

    def _granted(self, queue: _TagQueue, lease: Any, served: int) -> None:
        """A new ``lease`` from the manager: run the head of the queue with it, and ask
        for one more slot while runs are still waiting (the manager grants at once
        while slots are free, and queues the request once they are not)."""
        with self._lock:
            queue.requested = False
            if not queue.waiting:
                lease.release()
                return
            ask_again = len(queue.waiting) > 1
            if ask_again:
                queue.requested = True
        self._run_head(queue, lease, served)
        if ask_again:
            self._request(queue)

    def _run_head(self, queue: _TagQueue, lease: Any, served: int) -> None:
        with self._lock:
            if not queue.waiting:
                lease.release()
                return
            future, dispatch = queue.waiting.popleft()
        self._start(queue, lease, served, future, dispatch)

    def _start(self, queue: _TagQueue, lease: Any, served: int, future: Future,
               dispatch: Callable[[], None]) -> None:
        future.add_done_callback(lambda _: self._settled(queue, lease, served + 1))
        guarded(future, dispatch)()

    def _request(self, queue: _TagQueue) -> None:
        try:
            self.manager.request(queue.names, 1, lambda lease: self._granted(queue, lease, 0))
        except Exception as exc:  # noqa: BLE001 - e.g. the slot files cannot be created
            # every run waiting on these tags would ask the same manager: end them all
            with self._lock:
                failed = list(queue.waiting)
                queue.waiting.clear()
                queue.requested = False
            for future, _ in failed:
                dispatch_failed(future, exc)

    def _settled(self, queue: _TagQueue, lease: Any, served: int) -> None:
        """A run holding ``lease`` ended: hand its slots to the next run of this driver,
        or give them back to the manager."""
        with self._lock:
            if queue.waiting and served < HANDOFFS and lease.names:
                future, dispatch = queue.waiting.popleft()
            else:
                future = None
        if future is not None:
            self._start(queue, lease, served, future, dispatch)
            return
        lease.release()
        with self._lock:
            ask_again = bool(queue.waiting) and not queue.requested
            if ask_again:
                queue.requested = True
        if ask_again:
            self._request(queue)
