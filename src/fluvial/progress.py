"""A live progress line for flow runs with many task runs, drawn with rich.

Shown on an interactive terminal (stderr is a TTY) unless ``FLUVIAL_PROGRESS=off``;
``FLUVIAL_PROGRESS=on`` forces it. The engine only bumps integer counters when a task
run settles; rich's refresh thread reads them ten times a second, so the display costs
the hot path nothing measurable.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fluvial.futures import Future
    from fluvial.orchestration.tracking import RunTracker

__all__ = ["ProgressDisplay", "progress_enabled"]


def progress_enabled() -> bool:
    from fluvial import settings

    forced = settings.get().progress
    return sys.stderr.isatty() if forced is None else forced


class ProgressDisplay:
    """Completed / failed / running counts, rate and ETA of one flow run's task runs."""

    def __init__(self, tracker: RunTracker, title: str) -> None:
        self.tracker = tracker
        self.title = title
        self.completed = 0
        self.failed = 0
        self._started = time.monotonic()
        self._live: Any = None

    def settled(self, future: Future) -> None:
        state = future._state
        if state is not None and state.is_completed():
            self.completed += 1
        else:
            self.failed += 1

    def start(self) -> None:
        from rich.console import Console
        from rich.live import Live

        self._live = Live(self, console=Console(stderr=True), refresh_per_second=10,
                          transient=False)
        self._live.start()

    def stop(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    def __rich__(self) -> Any:
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        total = self.tracker.submitted_count
        done = self.completed + self.failed
        elapsed = max(time.monotonic() - self._started, 1e-9)
        rate = done / elapsed
        eta = (total - done) / rate if rate > 0 and total > done else 0.0
        grid = Table.grid(padding=(0, 1))
        grid.add_row(
            self.title,
            ProgressBar(total=max(total, 1), completed=done, width=30),
            f"{self.completed} completed",
            f"[red]{self.failed} failed[/red]" if self.failed else "0 failed",
            f"{self.tracker.outstanding} running/pending",
            f"{rate:,.0f} tasks/s",
            f"ETA {eta:,.1f} s",
        )
        return grid
