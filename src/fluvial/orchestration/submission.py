"""From a call of ``Task.submit`` / ``Task.map`` to task runs handed to the runner.

This is the driver side of the engine: it finds the futures in the arguments (data
dependencies) and in ``wait_for`` (ordering only), builds the ``Submission`` records,
and (``dispatch``) counts them with the flow run's tracker and registers it as their
futures' subscriber before handing them to the runner. Runners then decide when and
where each run executes; they know nothing of tracking.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fluvial.annotations import allow_failure
from fluvial.context import _flow_run, current_tags
from fluvial.futures import Future
from fluvial.futures._base import guarded, when_settled
from fluvial.orchestration.admission import Admission
from fluvial.runs import Submission
from fluvial.states import State, StateType
from fluvial.worker.arguments import extract, extract_call

if TYPE_CHECKING:
    from fluvial.protocols import RunnerSpec, TaskSpec, TrackerSpec
    from fluvial.runs import TaskRun

__all__ = ["current_runner", "dispatch", "prepare", "tag_slots"]


class Waits(list[Future]):
    """The futures of a ``wait_for=``; ``allowed`` holds the positions of those given in
    ``allow_failure(...)``."""

    allowed: tuple[int, ...] = ()


def wait_for_futures(task: TaskSpec, wait_for: Iterable[Any] | None) -> list[Future]:
    if wait_for is None:
        return []
    if isinstance(wait_for, (Future, allow_failure)):
        wait_for = [wait_for]
    found = Waits()
    allowed: list[int] = []
    for item in wait_for:
        extract(item, found, allowed)
    if allowed:
        found.allowed = tuple(allowed)
    return found


def prepare(task_run: TaskRun, waits: list[Future]) -> Submission:
    """Replace futures in ``task_run``'s arguments by markers; collect its upstreams."""
    found: list[Future] = []
    allowed: list[int] = []
    task_run.args, task_run.kwargs = extract_call(task_run.args, task_run.kwargs, found,
                                                  allowed)
    n_data = len(found)
    if waits:
        allowed.extend(n_data + i for i in getattr(waits, "allowed", ()))
        found.extend(waits)
    if allowed:
        task_run.allowed_failures = frozenset(allowed)
    if found:
        task_run.upstream_names = tuple(f.task_name for f in found)
        for upstream in found:  # a consumer sees (and propagates) an upstream's failure
            upstream._observed = True
        _record_edges(task_run, found)
    task = task_run.task
    if task.log_prints is None:  # the flow's setting, carried to wherever the run runs
        ctx = _flow_run.get()
        if ctx is not None and ctx.flow.log_prints:
            task_run.log_prints = True
    if task.ships_flow_parameters:
        ctx = _flow_run.get()
        task_run.flow_parameters = dict(ctx.flow_run.parameters) if ctx is not None else {}
    if task.persist_result:
        ctx = _flow_run.get()
        if ctx is not None and ctx.flow_run.lineage_id != ctx.flow_run.id:
            task_run.lineage_id = ctx.flow_run.lineage_id
    return Submission(task_run, found, n_data)


def _record_edges(task_run: TaskRun, upstreams: list[Future]) -> None:
    """Tell the run record which task runs fed ``task_run`` (the run page's graph)."""
    ctx = _flow_run.get()
    recorder = getattr(ctx.tracker, "recorder", None) if ctx is not None else None
    if recorder is None:
        return
    ids = tuple(run.id for run in (getattr(f, "task_run", None) for f in upstreams)
                if run is not None)
    if ids:
        recorder.edges(task_run.flow_run_id, task_run.id, ids)


def current_runner() -> tuple[RunnerSpec, TrackerSpec, Any]:
    """The runner that new task runs go to, the subscriber of their futures (the flow
    run's tracker) and the flow run id they belong to."""
    ctx = _flow_run.get()
    if ctx is not None and ctx.task_runner is not None:  # None: a context carried by
        return ctx.task_runner, ctx.tracker, ctx.flow_run.id  # with_context, no runner
    return _default()


_outside: tuple[RunnerSpec, TrackerSpec, Any] | None = None


def _default() -> tuple[RunnerSpec, TrackerSpec, Any]:
    """Outside any flow: a process-wide thread runner, started on first use."""
    global _outside
    from fluvial.runners.threads import default_runner

    runner = default_runner()
    if _outside is None or _outside[0] is not runner:
        from fluvial.orchestration.crashes import CrashRule

        _outside = (runner, CrashRule(runner), None)
    return _outside


def dispatch(runner: RunnerSpec, subscriber: TrackerSpec,
             submissions: Sequence[Submission]) -> list[Future]:
    """Hand ``submissions`` to ``runner``; their futures report to ``subscriber``.

    A tagged run also waits on a *gate*, a future that the driver settles once the run
    holds a slot of each of its tags (after its upstreams have settled); the runner
    treats it as one more upstream and hands the run to a worker only then. The slots
    go back when the run's future settles. A runner whose cluster takes the slots
    itself (``gates_tags``: Dask, on its scheduler) gets its tagged runs ungated.
    """
    if not submissions:
        return []
    gated: list[tuple[Submission, Future]] = []
    admits = not getattr(runner, "gates_tags", False)  # else the runner takes the slots
    for submission in submissions:
        submission.subscriber = subscriber
        if admits and submission.task_run.tags:
            gate = Future(submission.task_run)
            submission.upstreams.append(gate)
            gated.append((submission, gate))
    subscriber.submitted(len(submissions))
    try:
        futures = runner.submit_many(submissions)
    except BaseException:  # refused before any was dispatched (runner contract)
        subscriber.withdrawn(len(submissions))
        raise
    if gated:
        admission = _admission(runner)
        by_run = {f.task_run.id: f for f in futures} if len(futures) > 1 else None
        for submission, gate in gated:
            future = by_run[submission.task_run.id] if by_run is not None else futures[0]
            _admit_when_ready(admission, submission, future, gate)
    return futures


_OPEN = State(StateType.COMPLETED, "Completed", "tag slots taken")
_admissions: weakref.WeakKeyDictionary[RunnerSpec, Admission] = weakref.WeakKeyDictionary()


def _admission(runner: RunnerSpec) -> Admission:
    """The admission queue of ``runner``'s tag slots (one per runner, made on first need)."""
    admission = _admissions.get(runner)
    if admission is None:
        admission = _admissions.setdefault(runner, Admission(runner.slot_manager))
    return admission


def _admit_when_ready(admission: Admission, submission: Submission, future: Future,
                      gate: Future) -> None:
    admit = guarded(future, lambda: admission.admit(submission.task_run, future,
                                                    lambda: gate._complete(_OPEN)))
    when_settled(submission.upstreams[:-1], admit)


def effective_tags(task: TaskSpec) -> frozenset[str]:
    ctx_tags = current_tags()
    return task.tags | ctx_tags if ctx_tags else task.tags


@contextmanager
def tag_slots(tags: frozenset[str]) -> Iterator[None]:
    """Hold one slot of each of ``tags`` for a task run called directly (``task(...)``).

    Submitted runs take their slots in the driver's admission; a call takes them here,
    from the same slot manager: the flow's runner's (cluster-wide on Dask and Ray), or
    this machine's outside a flow. Blocks while a limit is full, or is 0, as a
    submitted run waits.
    """
    if not tags:
        yield
        return
    ctx = _flow_run.get()
    if ctx is not None and ctx.task_runner is not None:
        manager = _admission(ctx.task_runner).manager
    else:
        from fluvial.concurrency import get_slot_manager

        manager = get_slot_manager()
    lease = manager.acquire(sorted(tags), 1)
    try:
        yield
    finally:
        lease.release()
