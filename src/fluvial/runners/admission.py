"""Admission before dispatch: a tagged task run takes its tag slots in the driver before
it is handed to a worker, and gives them back when its future settles — completed,
failed, crashed, cancelled or timed out — so no worker ever sits blocked on a slot and
a slot held by a run whose worker died comes back with the run's final state.

Untagged runs skip all of this (one attribute test). Tags without a limit are granted
synchronously by the slot manager, at the cost of a dictionary lookup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fluvial.futures import Future
    from fluvial.runs import TaskRun

__all__ = ["Admission"]


class Admission:
    """Takes tag slots for task runs from one slot manager (made on first need)."""

    def __init__(self, make_manager: Callable[[], Any]) -> None:
        self._make_manager = make_manager
        self._manager: Any = None

    @property
    def manager(self) -> Any:
        if self._manager is None:
            self._manager = self._make_manager()
        return self._manager

    def admit(self, task_run: TaskRun, future: Future, dispatch: Callable[[], None]) -> None:
        """Call ``dispatch()`` once ``task_run`` holds a slot of each of its tags."""

        def granted(lease: Any) -> None:
            if lease.names:
                future.add_done_callback(lambda _: lease.release())
            dispatch()

        self.manager.request(sorted(task_run.tags), 1, granted)
