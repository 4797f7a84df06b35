"""Bookkeeping of one flow run's task runs: how many are still out, and which failed.

The flow engine waits on a ``RunTracker`` at flow exit so that no submitted work is
dropped, and asks it which failures nobody looked at. It keeps a count, not a list
of every future, so a flow of a million tasks does not hold a million states.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from fluvial.orchestration.crashes import CrashRule
from fluvial.orchestration.recording import record_task_run
from fluvial.states import StateType

if TYPE_CHECKING:
    from fluvial.futures import Future
    from fluvial.protocols import RunnerSpec
    from fluvial.store import Recorder

__all__ = ["RunTracker"]


class RunTracker(CrashRule):
    """The subscriber of every task run of one flow run (see ``fluvial.futures``): it
    counts them, records each as it settles, and applies the crash rule."""

    def __init__(self, runner: RunnerSpec, recorder: Recorder | None = None) -> None:
        super().__init__(runner)
        self.recorder = recorder  # the run record, told of every settled task run
        self._lock = threading.Lock()
        self._outstanding = 0
        self._idle = threading.Event()
        self._idle.set()
        self.failed: list[Future] = []
        self.submitted_count = 0
        self.listeners: list = []  # callables (future) -> None, e.g. a progress display
        self.streams: set = set()  # streaming maps not consumed to the end (drained at exit)

    def submitted(self, n: int = 1) -> None:
        with self._lock:
            if self._outstanding == 0:
                self._idle.clear()
            self._outstanding += n
            self.submitted_count += n

    def withdrawn(self, n: int) -> None:
        with self._lock:
            self._outstanding -= n
            self.submitted_count -= n
            if self._outstanding == 0:
                self._idle.set()

    def settled(self, future: Future) -> None:
        state = future._state
        if state is not None and state.type is not StateType.COMPLETED:
            self.failed.append(future)
        if self.recorder is not None:
            record_task_run(self.recorder, future.task_run, state)  # type: ignore[arg-type]
        for listener in self.listeners:
            listener(future)
        with self._lock:
            self._outstanding -= 1
            if self._outstanding == 0:
                self._idle.set()

    @property
    def outstanding(self) -> int:
        return self._outstanding

    def wait_all(self, timeout: float | None = None) -> bool:
        """Block until every submitted task run has settled; False on timeout. A
        streaming map nobody consumed to its end is run to its end first."""
        while self.streams:
            self.streams.pop().drain()
        return self._idle.wait(timeout)

    def unobserved_failures(self) -> list[Future]:
        return [f for f in self.failed if not f._observed]
