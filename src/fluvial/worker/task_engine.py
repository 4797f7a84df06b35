"""The state machine of one task run: the code that runs wherever the task runs.

``run_task(task_run, upstream_states)`` is called by every runner — in a pool thread,
a worker process, a Dask worker or a Ray worker — and returns the final ``State``.
It never raises for a task's own failure. In order it:

1. ends ``NotReady`` if an upstream (data or ``wait_for``) did not complete, unless it
   was given in ``allow_failure(...)`` (then its exception stands in for its result);
2. puts upstream results into the arguments;
3. answers from the cache if the task's cache policy finds a valid record;
4. calls the function (under ``timeout_seconds`` if set), retrying failed attempts
   with the task's delays while ``retries`` and ``retry_condition_fn`` allow;
5. persists the result if asked, then calls the completion or failure hooks once
   (``on_running`` hooks are called as the run, and each retry, starts running).
"""

from __future__ import annotations

import inspect
import logging
import random
import time
from collections.abc import Sequence
from typing import Any

from fluvial import states as st
from fluvial.context import TaskRunContext, _flow_run, _task_run
from fluvial.exceptions import TaskTimeoutError, UpstreamTaskError
from fluvial.futures import Future
from fluvial.logging import print_as_log
from fluvial.runs import TaskRun, bind_parameters
from fluvial.states import State, StateType
from fluvial.worker import caching
from fluvial.worker.arguments import resolve_call
from fluvial.worker.hooks import call_hooks, final_hooks
from fluvial.worker.timeouts import call_with_timeout, run_coroutine

__all__ = ["run_task", "upstream_failure"]

logger = logging.getLogger("fluvial.task_runs")


def upstream_failure(task_run: TaskRun, upstream_name: str, upstream: State) -> State:
    """The ``NotReady`` state of a task run whose upstream did not complete."""
    message = (
        f"Task run {task_run.task.name!r} did not run: upstream task run {upstream_name!r} "
        f"ended in state {upstream.name!r}"
    )
    if upstream.message and upstream.name != "NotReady":  # name the root cause once
        message += f" ({upstream.message})"
    return st.NotReady(message, UpstreamTaskError(message))


def run_task(task_run: TaskRun, upstream_states: Sequence[State] = (), n_data: int = 0) -> State:
    """Run one task run to a final state. ``upstream_states[:n_data]`` feed the arguments."""
    allowed = task_run.allowed_failures
    for i, upstream in enumerate(upstream_states):
        if upstream.type is not StateType.COMPLETED and i not in allowed:
            names = task_run.upstream_names
            return upstream_failure(task_run, names[i] if i < len(names) else "?", upstream)

    args, kwargs = task_run.args, task_run.kwargs
    if n_data:
        if allowed:  # a failed upstream given in allow_failure(...) passes its exception
            values = [s.result() if s.type is StateType.COMPLETED
                      else s.result(raise_on_failure=False) for s in upstream_states[:n_data]]
        else:
            values = [s.result() for s in upstream_states[:n_data]]
        args, kwargs = resolve_call(args, kwargs, values)
        if task_run._name is None and task_run.task.task_run_name is not None:
            # a template over upstream results is rendered with them, as Prefect does
            task_run._name = task_run.task.render_run_name(
                task_run, bind_parameters(task_run.task.fn, args, kwargs))

    task = task_run.task
    started = time.time()
    token = _task_run.set(TaskRunContext(task, task_run))
    log_prints = task.log_prints
    if log_prints is None:
        log_prints = task_run.log_prints  # the flow's, set by the driver
        if log_prints is None:
            flow_ctx = _flow_run.get()
            log_prints = flow_ctx is not None and flow_ctx.flow.log_prints
    try:
        if task.on_running_hooks:
            call_hooks(task.on_running_hooks, task, task_run, st.Running())
        if task.key_policy is not None:
            try:
                key = caching.compute_key(task, task_run, args, kwargs)
            except (TypeError, ValueError) as exc:  # unhashable input, bad key: named
                return _finish(task, task_run, st.Failed(exc))
            with caching.session(task, task_run, key) as cache:
                if cache.hit is not None:
                    cache.hit.start_ts = started
                    return _finish(task, task_run, cache.hit)
                state = cache.save(_run_attempts(task, task_run, args, kwargs, log_prints))
            if key is not None:
                state = caching.out_of_memory(task, key, state)
        elif task.persist_result:
            key = caching.persist_key_for(task, task_run, args, kwargs)
            # a retried flow run reuses what completed; Prefect's DEFAULT policy finds
            # a result of the same inputs in the same flow run
            if (task_run.lineage_id is not None or task.finds_own_results) \
                    and not task.refresh_cache:
                hit = caching.read(task, key)
                if hit is not None:
                    hit.start_ts = started
                    return _finish(task, task_run, caching.out_of_memory(task, key, hit))
            state = _run_attempts(task, task_run, args, kwargs, log_prints)
            if state.type is StateType.COMPLETED:
                state = caching.out_of_memory(task, key,
                                              caching.persist(task, task_run, key, state))
        else:
            state = _run_attempts(task, task_run, args, kwargs, log_prints)
        state.start_ts = started
        return _finish(task, task_run, state)
    finally:
        _task_run.reset(token)


def _run_attempts(task: Any, task_run: TaskRun, args: tuple, kwargs: dict,
                  log_prints: bool | None) -> State:
    if log_prints:
        with print_as_log(True):
            return _attempts(task, task_run, args, kwargs)
    return _attempts(task, task_run, args, kwargs)


def _attempts(task: Any, task_run: TaskRun, args: tuple, kwargs: dict) -> State:
    fn = task.fn
    timeout = task.timeout_seconds
    while True:
        task_run.run_count += 1
        if task_run.run_count > 1 and task.on_running_hooks:  # a retry runs again
            call_hooks(task.on_running_hooks, task, task_run, st.Running())
        try:
            if task.is_async:
                result = run_coroutine(fn(*args, **kwargs), timeout, _what(task_run))
            elif timeout is not None:
                result = call_with_timeout(fn, args, kwargs, timeout, _what(task_run))
            else:
                result = fn(*args, **kwargs)
        except TaskTimeoutError as exc:
            state = st.TimedOut(exc, str(exc))
        except Exception as exc:  # noqa: BLE001 - the task's own failure becomes its state
            state = st.Failed(exc)
        else:
            return _result_state(result)
        if not _should_retry(task, task_run, state):
            return state
        delay = task.retry_delay_for(task_run.run_count)
        if logger.isEnabledFor(logging.INFO):
            logger.info("Task run %r - %s; retry %d of %d in %.3g s", task_run.name, state.message,
                        task_run.run_count, task.retries, delay)
        if delay > 0:
            time.sleep(delay)


def _result_state(result: Any) -> State:
    if isinstance(result, State):
        return result
    if isinstance(result, Future):
        result.wait()
        return result._final_state()
    if inspect.iscoroutine(result):  # a sync function returned a coroutine: run it
        return st.Completed(run_coroutine(result))
    return st.Completed(result)


def _should_retry(task: Any, task_run: TaskRun, state: State) -> bool:
    if task_run.run_count > task.retries:
        return False
    condition = task.retry_condition_fn
    if condition is None:
        return True
    try:
        return bool(condition(task, task_run, state))
    except Exception:
        logger.exception("retry_condition_fn of task %r raised; not retrying", task.name)
        return False


def _finish(task: Any, task_run: TaskRun, state: State) -> State:
    hooks = final_hooks(task, state)
    if hooks:
        call_hooks(hooks, task, task_run, state)
    if logger.isEnabledFor(logging.DEBUG):
        logger.debug("Task run %r - Finished in state %r", task_run.name, state)
    return state


def _what(task_run: TaskRun) -> str:
    return f"Task run {task_run.name!r}"


def retry_delay_jittered(delay: float, jitter_factor: float | None) -> float:
    """``delay`` spread uniformly by ``±jitter_factor`` of itself (never below zero)."""
    if not jitter_factor or delay <= 0:
        return delay
    return max(0.0, random.uniform(delay * (1 - jitter_factor), delay * (1 + jitter_factor)))
