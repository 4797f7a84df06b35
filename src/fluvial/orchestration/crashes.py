"""What the driver does when a runner reports a crashed task run — one rule for every
runner.

A run *crashes* when its worker dies (a process killed, a segfault, a lost Dask or Ray
worker) or when the engine itself raises where the task runs. The runner only reports
it (``Future._report``); this module decides, once every upstream of the run has
settled:

* an upstream did not complete: the run ends ``NotReady`` naming it (the backend
  never ran the run, it only passed the upstream's error on);
* an upstream was itself resubmitted after a crash while this run was already on
  the backend with the upstream's old reference: the run never ran, so it is sent
  again without counting an attempt;
* otherwise the crash counts as an attempt (``run_count``), and the run is resubmitted
  to the same runner while ``run_count <= retries``; past that it ends ``Crashed``.

A resubmission gets a new future whose subscriber (``Relay``) settles the future the
user holds, so waiting, callbacks and the flow's tracker see one run with one final
state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fluvial.futures._base import when_settled
from fluvial.runs import Submission
from fluvial.states import State, StateType
from fluvial.worker.task_engine import upstream_failure

if TYPE_CHECKING:
    from fluvial.futures import Future
    from fluvial.protocols import RunnerSpec

__all__ = ["CrashRule", "Relay"]


class CrashRule:
    """The driver's side of crash reports for task runs submitted to ``runner``."""

    recorder: Any = None  # the run record: none outside a flow run

    def __init__(self, runner: RunnerSpec) -> None:
        self.runner = runner

    def submitted(self, n: int = 1) -> None:
        """Nothing to count (a subclass, the flow run's tracker, does)."""

    def withdrawn(self, n: int) -> None:
        """Nothing to count: ``n`` runs counted by ``submitted`` were refused."""

    def settled(self, future: Future) -> None:
        """Nothing to track."""

    def crashed(self, future: Future, state: State, submission: Submission) -> bool:
        upstreams = submission.upstreams
        if any(u._state is None for u in upstreams):
            when_settled(upstreams, lambda: self._settle(future, state, submission))
            return True
        return self._decide(future, state, submission)

    def _settle(self, future: Future, state: State, submission: Submission) -> None:
        if not self._decide(future, state, submission):
            future._complete(state)

    def _decide(self, future: Future, state: State, submission: Submission) -> bool:
        task_run = submission.task_run
        allowed = task_run.allowed_failures  # allow_failure(...) upstreams may fail
        for i, upstream in enumerate(submission.upstreams):
            upstream_state = upstream._state
            if upstream_state is not None and upstream_state.type is not StateType.COMPLETED \
                    and i not in allowed:
                future._complete(upstream_failure(task_run, upstream.task_name, upstream_state))
                return True
        if not _stale_inputs(future, submission):
            attempts = getattr(state.data, "attempts", None) or 0
            task_run.run_count = max(task_run.run_count + 1, attempts)
            if task_run.run_count > task_run.task.retries:
                return False
        self._resubmit(future, submission)
        return True

    def _resubmit(self, future: Future, submission: Submission) -> None:
        again = Submission(submission.task_run, submission.upstreams, submission.n_data,
                           Relay(future, self))
        try:
            future._resubmitted(self.runner.submit(again))
        except BaseException as exc:  # noqa: BLE001 - the runner is gone (flow ended...)
            from fluvial.worker.entry import crash_state

            future._complete(crash_state(submission.task_run, f"Task run "
                                         f"{submission.task_run.name!r} crashed and could not "
                                         f"be resubmitted to {self.runner!r}: {exc!r}", exc))


def _stale_inputs(future: Future, submission: Submission) -> bool:
    """Whether the run went to the backend with an upstream reference that a crash
    retry of that upstream has since replaced (remote futures know; local ones wait
    for their upstreams in the driver, so they never are)."""
    stale = getattr(future, "_stale", None)
    return bool(stale is not None and stale(submission))


class Relay:
    """The subscriber of a resubmitted run: settles the future the user holds."""

    __slots__ = ("original", "rule")

    def __init__(self, original: Future, rule: Any) -> None:
        self.original = original
        self.rule = rule

    def settled(self, future: Future) -> None:
        self.original._complete_from(future)

    def crashed(self, future: Future, state: State, submission: Submission) -> bool:
        # the same rule, for the run the user holds (its attempts keep counting)
        return bool(self.rule.crashed(self.original, state, submission))
