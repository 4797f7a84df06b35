"""The state machine of one flow run.

``run_flow`` validates the arguments (a bad argument raises before anything runs),
starts the flow's task runner (a fresh duplicate when that runner is already busy,
e.g. for a subflow), calls the function under the run context, and settles the run:

* the final state follows the return value: returned futures and states are resolved
  (a failed one fails the flow), a raised exception fails it;
* every task run submitted during the flow is waited for before the flow ends;
* a task run that failed while nobody looked at it (no ``result()``, ``wait()`` or
  ``state``, not returned, not consumed downstream) fails the flow, naming the task,
  so a flow never reports ``Completed`` over failures it silently dropped;
* retries re-run the whole function; hooks run once, on the final state.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from fluvial import states as st
from fluvial.context import FlowRunContext, _flow_run, _task_run
from fluvial.exceptions import FlowTimeoutError, TaskTimeoutError
from fluvial.futures import Future
from fluvial.logging import configure_console, print_as_log
from fluvial.orchestration.recording import open_recorder, record_flow_start, record_flow_state
from fluvial.orchestration.resume import current_lineage, save_run_inputs
from fluvial.orchestration.tracking import RunTracker
from fluvial.runs import FlowRun
from fluvial.states import State, StateType
from fluvial.worker.arguments import ATOMIC
from fluvial.worker.hooks import call_hooks
from fluvial.worker.timeouts import call_with_timeout, run_coroutine

if TYPE_CHECKING:
    from fluvial.flows import Flow
    from fluvial.runners.base import TaskRunner
    from fluvial.store import Recorder

__all__ = ["run_flow"]

logger = logging.getLogger("fluvial.flow_runs")

_ADJECTIVES = ("amber", "brisk", "calm", "daring", "eager", "fluent", "gentle", "hidden",
               "ivory", "jolly", "keen", "lively", "mellow", "nimble", "opal", "proud",
               "quiet", "rapid", "silver", "tidal", "umber", "vivid", "wild", "young")
_NOUNS = ("otter", "heron", "delta", "brook", "salmon", "willow", "pike", "reed", "kingfisher",
          "beaver", "eddy", "rapids", "current", "estuary", "trout", "newt", "ferry", "weir")


def generate_run_name() -> str:
    return f"{random.choice(_ADJECTIVES)}-{random.choice(_NOUNS)}"


def run_flow(flow: Flow, args: tuple, kwargs: dict, return_state: bool = False) -> Any:
    parameters = flow.validator.bind(args, kwargs)
    if flow.validate_parameters:
        parameters = flow.validator.validate(parameters)
    configure_console()
    parent_task = _task_run.get()
    parent_flow = _flow_run.get()
    lineage = parent_flow.flow_run.lineage_id if parent_flow else current_lineage()
    parent_id = parent_flow.flow_run.id if parent_flow else (
        parent_task.task_run.flow_run_id if parent_task else None)
    flow_run = FlowRun(flow, flow.render_run_name(parameters) or generate_run_name(), parameters,
                       frozenset(), parent_task.task_run.id if parent_task else None, lineage,
                       parent_flow_run_id=parent_id,
                       root_flow_run_id=parent_flow.flow_run.root_flow_run_id if parent_flow
                       else parent_id)
    runner, owned = _runner_for(flow)
    recorder = open_recorder()
    record_flow_start(recorder, flow_run, st.Running())
    if recorder is not None and parent_flow is None:
        save_run_inputs(flow, flow_run)
    logger.info("Beginning flow run %r for flow %r", flow_run.name, flow.name)
    try:
        state = _run(flow, flow_run, runner, owned, parameters, recorder)
    except BaseException as exc:  # KeyboardInterrupt and the like: record, then re-raise
        record_flow_state(recorder, flow_run, st.Crashed(exc))
        raise
    flow_run.state = state
    record_flow_state(recorder, flow_run, state)
    hooks = flow.on_completion if state.is_completed() else flow.on_failure
    if hooks:
        call_hooks(hooks, flow, flow_run, state)
    log = logger.info if state.is_completed() else logger.error
    log("Flow run %r - Finished in state %r", flow_run.name, state)
    return state if return_state else state.result()


def _runner_for(flow: Flow) -> tuple[TaskRunner, bool]:
    """The runner for a new flow run, and whether this run starts and stops it.

    A runner the application started itself (``with runner: my_flow()``) is used as it
    is and left running; a runner already serving another flow run (a subflow of the
    flow that uses it) is duplicated.
    """
    runner = flow.task_runner
    if runner is None:
        from fluvial.runners.threads import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(), True
    if not runner.started:
        return runner, True
    if runner._flow_ctx is None:
        return runner, False
    return runner.duplicate(), True


def _run(flow: Flow, flow_run: FlowRun, runner: TaskRunner, owned: bool,
         parameters: dict, recorder: Recorder | None) -> State:
    tracker = RunTracker(recorder)
    ctx = FlowRunContext(flow, flow_run, runner, tracker)
    display = _progress(tracker, flow_run)
    token = _flow_run.set(ctx)
    task_token = _task_run.set(None)  # a subflow started in a task is its own run
    try:
        with runner if owned else contextlib.nullcontext(runner):
            runner._flow_ctx = ctx
            while True:
                flow_run.run_count += 1
                state = _attempt(flow, flow_run, parameters, tracker)
                if state.is_completed() or flow_run.run_count > flow.retries:
                    if owned and state.name == "TimedOut":
                        runner.shutdown(wait=False)  # do not wait for what still runs
                    return state
                logger.info("Flow run %r - %s; retry %d of %d", flow_run.name, state.message,
                            flow_run.run_count, flow.retries)
                record_flow_state(recorder, flow_run, st.Retrying(state.message))
                tracker = RunTracker(recorder)
                ctx.tracker = tracker
                if display is not None:
                    display.tracker = tracker
                    tracker.listeners.append(display.settled)
                if flow.retry_delay_seconds:
                    time.sleep(flow.retry_delay_seconds)
    finally:
        if display is not None:
            display.stop()
        _task_run.reset(task_token)
        _flow_run.reset(token)
        runner._flow_ctx = None


def _progress(tracker: RunTracker, flow_run: FlowRun) -> Any:
    """Start a live progress display for a top-level flow run on a terminal."""
    if _flow_run.get() is not None:  # subflows report through their parent's display
        return None
    from fluvial.progress import ProgressDisplay, progress_enabled

    if not progress_enabled():
        return None
    display = ProgressDisplay(tracker, flow_run.name)
    tracker.listeners.append(display.settled)
    display.start()
    return display


def _attempt(flow: Flow, flow_run: FlowRun, parameters: dict, tracker: RunTracker) -> State:
    what = f"Flow run {flow_run.name!r}"
    try:
        with print_as_log(flow.log_prints):
            if flow.is_async:
                value = run_coroutine(flow.fn(**parameters), flow.timeout_seconds, what)
            elif flow.timeout_seconds is not None:
                value = call_with_timeout(flow.fn, (), parameters, flow.timeout_seconds, what)
            else:
                value = flow.fn(**parameters)
        state = _state_of_return(value)
    except (FlowTimeoutError, TaskTimeoutError) as exc:
        timeout_error = FlowTimeoutError(str(exc))
        return st.TimedOut(timeout_error, str(exc))  # submitted runs continue in the background
    except Exception as exc:  # noqa: BLE001 - the flow's own failure becomes its state
        state = st.Failed(exc)
    tracker.wait_all()
    if state.type is StateType.COMPLETED:
        unobserved = tracker.unobserved_failures()
        if unobserved:
            first = unobserved[0]._final_state()
            names = ", ".join(repr(f.task_name) for f in unobserved[:5])
            more = f" and {len(unobserved) - 5} more" if len(unobserved) > 5 else ""
            message = (f"{len(unobserved)} task run(s) failed and nothing in the flow looked at "
                       f"the result: {names}{more}; first: {first.message}")
            return st.Failed(first.data if isinstance(first.data, BaseException) else None,
                             message)
    return state


def _state_of_return(value: Any) -> State:
    """The flow's state from its return value, resolving futures and states inside it."""
    if isinstance(value, State):
        return value if not value.is_completed() else st.Completed(value.data)
    found: list[Future] = []
    states: list[State] = []
    _collect(value, found, states)
    for future in found:
        future.wait()
        states.append(future._final_state())
    for s in states:
        if not s.is_completed():
            return st.Failed(s.data if isinstance(s.data, BaseException) else None,
                             s.message or f"A returned run ended in state {s.name!r}")
    if not found and not states:
        return st.Completed(value)
    return st.Completed(_replace(value))


def _collect(value: Any, found: list[Future], states: list[State]) -> None:
    if type(value) in ATOMIC:
        return
    if isinstance(value, Future):
        found.append(value)
    elif isinstance(value, State):
        states.append(value)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            if type(item) not in ATOMIC:
                _collect(item, found, states)
    elif isinstance(value, dict):
        for item in value.values():
            _collect(item, found, states)


def _replace(value: Any) -> Any:
    if isinstance(value, Future):
        return value.result()
    if isinstance(value, State):
        return value.result()
    if isinstance(value, (list, tuple, set, frozenset)):
        return type(value)(_replace(v) for v in value)
    if isinstance(value, dict):
        return {k: _replace(v) for k, v in value.items()}
    return value
