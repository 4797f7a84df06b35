"""How many small task runs go to a worker as one message: batch sizes from measured
durations, shared by the runners that batch (processes, Dask, Ray).

A runner reports how long each run of a task took where it ran (``observe``); the
sizer keeps a moving average per task name and sizes the next batch of that task so
that it holds about ``target_seconds`` of work (at most ``max_batch`` runs), but never
more than the ready runs spread over the workers (``ceil(ready / slots)``), so the
tail of a map still reaches every worker. A task not measured yet goes one run at a
time until its first run reports, and a task slower than the target always does: a
map of 100 one-second runs is spread run by run over every worker.
"""

from __future__ import annotations

__all__ = ["BatchSizer"]


class BatchSizer:
    """Batch sizes per task name, from an exponential moving average of run durations."""

    __slots__ = ("target_seconds", "max_batch", "_durations")

    def __init__(self, target_seconds: float, max_batch: int) -> None:
        self.target_seconds = target_seconds
        self.max_batch = max_batch
        self._durations: dict[str, float] = {}

    def observe(self, name: str, seconds: float) -> None:
        """One run of task ``name`` took ``seconds`` where it ran."""
        if seconds < 0:
            return
        prev = self._durations.get(name)
        self._durations[name] = seconds if prev is None else 0.8 * prev + 0.2 * seconds

    def measured(self, name: str) -> float | None:
        """The average duration of a run of ``name``, or None before its first run."""
        return self._durations.get(name)

    def slow(self, name: str) -> bool:
        """Whether runs of ``name`` are measured too slow to share a batch (None yet: no)."""
        avg = self._durations.get(name)
        return avg is not None and avg * 2 > self.target_seconds

    def size(self, name: str, ready: int, slots: int) -> int:
        """How many of ``ready`` runs of ``name`` the next batch takes, for ``slots``
        workers (threads) that can each run one batch at a time."""
        avg = self._durations.get(name)
        if avg is None:
            return 1
        spread = -(-ready // max(1, slots))  # ceil: keep every worker busy
        by_time = int(self.target_seconds / avg) if avg > 0 else self.max_batch
        return max(1, min(self.max_batch, by_time, spread))
