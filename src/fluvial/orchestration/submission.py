"""From a call of ``Task.submit`` / ``Task.map`` to task runs handed to the runner.

This is the driver side of the engine: it finds the futures in the arguments (data
dependencies) and in ``wait_for`` (ordering only), builds the ``TaskRun`` records
and registers each run with the flow run's tracker. Runners then decide when and
where each run executes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from fluvial.annotations import allow_failure
from fluvial.context import _flow_run, current_tags
from fluvial.futures import Future
from fluvial.runs import Submission
from fluvial.worker.arguments import extract, extract_call

if TYPE_CHECKING:
    from fluvial.orchestration.tracking import RunTracker
    from fluvial.runners.base import TaskRunner
    from fluvial.runs import TaskRun
    from fluvial.tasks import Task

__all__ = ["current_runner", "prepare", "tag_slots"]


class Waits(list[Future]):
    """The futures of a ``wait_for=``; ``allowed`` holds the positions of those given in
    ``allow_failure(...)``."""

    allowed: tuple[int, ...] = ()


def wait_for_futures(task: Task, wait_for: Iterable[Any] | None) -> list[Future]:
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
    task = task_run.task
    if task.ships_flow_parameters:
        ctx = _flow_run.get()
        task_run.flow_parameters = dict(ctx.flow_run.parameters) if ctx is not None else {}
    if task.persist_result:
        ctx = _flow_run.get()
        if ctx is not None and ctx.flow_run.lineage_id != ctx.flow_run.id:
            task_run.lineage_id = ctx.flow_run.lineage_id
    return Submission(task_run, found, n_data)


def current_runner() -> tuple[TaskRunner, RunTracker | None, Any]:
    """The runner, tracker and flow run id that new task runs belong to."""
    ctx = _flow_run.get()
    if ctx is not None and ctx.task_runner is not None:  # None: a context carried by
        return ctx.task_runner, ctx.tracker, ctx.flow_run.id  # with_context, no runner
    from fluvial.runners.threads import default_runner

    return default_runner(), None, None


def effective_tags(task: Task) -> frozenset[str]:
    ctx_tags = current_tags()
    return task.tags | ctx_tags if ctx_tags else task.tags


@contextmanager
def tag_slots(tags: frozenset[str]) -> Iterator[None]:
    """Hold one slot of each of ``tags`` for a task run called directly (``task(...)``).

    Submitted runs take their slots in the runner's admission; a call takes them here,
    from the same slot manager: the flow's runner's (cluster-wide on Dask and Ray), or
    this machine's outside a flow. Blocks while a limit is full, or is 0, as a
    submitted run waits.
    """
    if not tags:
        yield
        return
    ctx = _flow_run.get()
    admission = getattr(ctx.task_runner, "_admission", None) if ctx is not None else None
    if admission is not None:
        manager = admission.manager
    else:
        from fluvial.concurrency import get_slot_manager

        manager = get_slot_manager()
    lease = manager.acquire(sorted(tags), 1)
    try:
        yield
    finally:
        lease.release()
