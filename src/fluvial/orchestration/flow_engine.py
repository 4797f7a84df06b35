"""The state machine of one flow run.

``run_flow`` validates the arguments (a bad argument raises before anything runs),
starts the flow's task runner (a fresh duplicate when that runner is already busy,
e.g. for a subflow), calls the function under the run context, and settles the run:

* the final state follows Prefect's rules (``states.return_value_to_state``): a raised
  exception fails the flow; a returned state made by hand is the final state; returned
  futures are resolved to their states, and a returned run state or iterable of only
  states fails the flow if any of them failed; anything else is Completed;
* every task run submitted during the flow is waited for before the flow ends, and the
  final state is timestamped then (the run's end time is when its last task run ended);
* a task run that failed while nobody looked at it (no ``result()``, ``wait()`` or
  ``state``, not returned, not consumed downstream) does not fail the flow (as in
  Prefect): a WARNING at flow end names each one, and the record keeps it Failed;
* the caller gets what Prefect hands back: the returned value with futures replaced by
  their states, or, when that is a state, the flow state's ``result()``;
* retries re-run the whole function; hooks run once, on the final state.
"""

from __future__ import annotations

import contextlib
import logging
import random
import time
from typing import TYPE_CHECKING, Any

from fluvial import states as st
from fluvial.context import FlowRunContext, _flow_run, _planned_flow_run, _task_run
from fluvial.exceptions import (
    FlowTimeoutError,
    ParameterTypeError,
    TaskTimeoutError,
    UpstreamTaskError,
)
from fluvial.futures import resolve_futures_to_states
from fluvial.logging import configure_console, print_as_log
from fluvial.orchestration.collector import thaw
from fluvial.orchestration.recording import open_recorder, record_flow_start, record_flow_state
from fluvial.orchestration.resume import current_lineage, save_run_inputs
from fluvial.orchestration.tracking import RunTracker
from fluvial.runs import FlowRun
from fluvial.states import State
from fluvial.worker.hooks import call_hooks, final_hooks
from fluvial.worker.timeouts import call_with_timeout, run_coroutine

if TYPE_CHECKING:
    from fluvial.protocols import FlowSpec
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


_RAISED: Any = object()  # the flow raised: the caller gets the exception, not a value


def run_flow(flow: FlowSpec, args: tuple, kwargs: dict, return_state: bool = False,
             wait_for: Any = None) -> Any:
    parameters = flow.validator.bind(args, kwargs, flow._bound_to)
    if wait_for is not None:
        not_ready = _wait_for_upstreams(flow, wait_for)
        if not_ready is not None:
            logger.error("%s", not_ready.message)
            return _handed_back(flow, not_ready) if return_state else not_ready.result()
    if flow.validate_parameters:
        try:
            parameters = flow.validator.validate(parameters)
        except ParameterTypeError as exc:
            refused = st.Failed(exc, f"{_REFUSED} with error: {exc}")
            _record_refused(flow, parameters, refused)
            if not return_state:
                raise
            logger.error("Flow %r: validation of flow parameters failed: %s", flow.name, exc)
            return _handed_back(flow, refused)
    configure_console()
    flow_run = _new_flow_run(flow, parameters)
    runner, owned = _runner_for(flow)
    recorder = open_recorder()
    record_flow_start(recorder, flow_run, st.Running())
    if recorder is not None and _flow_run.get() is None:
        save_run_inputs(flow, flow_run)
    logger.info("Beginning flow run %r for flow %r", flow_run.name, flow.name)
    try:
        state, returned = _run(flow, flow_run, runner, owned, parameters, recorder)
    except BaseException as exc:  # KeyboardInterrupt, SIGTERM...: record, hooks, re-raise
        state = _interrupted(flow_run, exc, recorder)
        state.run_id = flow_run.id
        flow_run.state = state
        if not state.is_cancelled():  # a cancelled run: its canceller records Cancelled
            record_flow_state(recorder, flow_run, state, final=True)  # once the process is gone
        hooks = final_hooks(flow, state)
        if hooks:
            call_hooks(hooks, flow, flow_run, state)
        raise
    state.run_id = flow_run.id
    _handed_back(flow, state)
    flow_run.state = state
    record_flow_state(recorder, flow_run, state, final=True)
    hooks = final_hooks(flow, state)
    if hooks:
        call_hooks(hooks, flow, flow_run, state)
    log = logger.info if state.is_completed() else logger.error
    log("Flow run %r - Finished in state %r", flow_run.name, state)
    if return_state:
        return state
    if returned is not _RAISED and not isinstance(returned, State):
        return returned  # futures in it are final states now, as Prefect hands them back
    return State.result(state)


def _new_flow_run(flow: FlowSpec, parameters: dict[str, Any], *,
                  name: str | None = None) -> FlowRun:
    """The ``FlowRun`` of a call of ``flow``: a subflow of the current flow run, the
    planned run of a deployment, or a new top-level run."""
    parent_task = _task_run.get()
    parent_flow = _flow_run.get()
    lineage = parent_flow.flow_run.lineage_id if parent_flow else current_lineage()
    parent_id = parent_flow.flow_run.id if parent_flow else (
        parent_task.task_run.flow_run_id if parent_task else None)
    planned = _planned_flow_run.get() if parent_flow is None else None
    if planned is not None:  # a deployment's run, already in the record
        flow_run = FlowRun(flow, planned.name, parameters, planned.tags, None, planned.id,
                           scheduled_start_time=planned.scheduled_start)
        flow_run.id = flow_run.root_flow_run_id = planned.id
        return flow_run
    return FlowRun(flow, name or flow.render_run_name(parameters) or generate_run_name(),
                   parameters, frozenset(), parent_task.task_run.id if parent_task else None,
                   lineage, parent_flow_run_id=parent_id,
                   root_flow_run_id=parent_flow.flow_run.root_flow_run_id if parent_flow
                   else parent_id)


_REFUSED = "Validation of flow parameters failed"


def refused_for_parameters(state: State) -> bool:
    """Whether ``state`` is that of a call refused because its parameters failed
    validation (the flow body never ran)."""
    return (state.is_failed() and isinstance(state.data, ParameterTypeError)
            and (state.message or "").startswith(_REFUSED))


def _record_refused(flow: FlowSpec, parameters: dict[str, Any], state: State) -> None:
    """A call whose parameters failed validation still leaves its flow run in the
    record, ``Failed`` with the validation error, as Prefect shows it; nothing ran."""
    recorder = open_recorder()
    if recorder is None:
        return
    # the run name template may need valid parameters: the refused run gets a generated one
    flow_run = _new_flow_run(flow, parameters, name=generate_run_name())
    state.run_id = flow_run.id
    flow_run.state = state
    record_flow_start(recorder, flow_run, st.Pending())
    state.ts = max(state.ts, time.time())  # entered after the Pending just recorded
    record_flow_state(recorder, flow_run, state, final=True)


def _handed_back(flow: FlowSpec, state: State) -> State:
    """A state of an ``async def`` flow gets a ``result()`` that is awaitable in async code."""
    if flow.is_async:
        st.awaitable_result(state)
    return state


def _interrupted(flow_run: FlowRun, exc: BaseException, recorder: Recorder | None) -> State:
    """The state of a flow run stopped by a ``BaseException``: ``Cancelled`` when the run
    record says it was being cancelled (``fluvial runs cancel`` marks it ``Cancelling``
    before it signals the process, and records ``Cancelled`` when the process is gone),
    ``Crashed`` otherwise."""
    if recorder is not None:
        try:
            from fluvial.store import queries

            if queries.get_flow_run(flow_run.id).state_type == "CANCELLING":
                return st.Cancelled(f"Flow run {flow_run.name!r} was cancelled", exc)
        except Exception:  # noqa: BLE001 - no record to ask: it crashed
            pass
    return st.Crashed(exc)


def _wait_for_upstreams(flow: FlowSpec, wait_for: Any) -> State | None:
    """Wait for the futures of a subflow's ``wait_for=``; the NotReady state of the flow
    if one of them did not complete (and was not given in ``allow_failure``)."""
    from fluvial.orchestration.submission import wait_for_futures

    waits = wait_for_futures(None, wait_for)  # type: ignore[arg-type]
    allowed = set(getattr(waits, "allowed", ()))
    for i, future in enumerate(waits):
        future.wait()
        state = future._final_state()
        if state.is_completed() or i in allowed:
            continue
        message = (f"Flow run of {flow.name!r} did not run: upstream task run "
                   f"{future.task_name!r} ended in state {state.name!r}")
        if state.message and state.name != "NotReady":
            message += f" ({state.message})"
        return st.NotReady(message, UpstreamTaskError(message))
    return None


def _runner_for(flow: FlowSpec) -> tuple[TaskRunner, bool]:
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
    if id(runner) not in _serving:
        return runner, False
    return runner.duplicate(), True


_serving: set[int] = set()  # ids of the runners serving a flow run right now


def _run(flow: FlowSpec, flow_run: FlowRun, runner: TaskRunner, owned: bool,
         parameters: dict, recorder: Recorder | None) -> tuple[State, Any]:
    tracker = RunTracker(runner, recorder)
    ctx = FlowRunContext(flow, flow_run, runner, tracker)
    display = _progress(tracker, flow_run)
    token = _flow_run.set(ctx)
    task_token = _task_run.set(None)  # a subflow started in a task is its own run
    try:
        with runner if owned else contextlib.nullcontext(runner):
            _serving.add(id(runner))
            while True:
                flow_run.run_count += 1
                if flow.on_running_hooks:
                    call_hooks(flow.on_running_hooks, flow, flow_run, st.Running())
                state, returned = _attempt(flow, flow_run, parameters, tracker)
                if state.is_completed() or flow_run.run_count > flow.retries:
                    if owned and state.name == "TimedOut":
                        runner.shutdown(wait=False)  # do not wait for what still runs
                    return state, returned
                logger.info("Flow run %r - %s; retry %d of %d", flow_run.name, state.message,
                            flow_run.run_count, flow.retries)
                record_flow_state(recorder, flow_run, st.Retrying(state.message))
                tracker = RunTracker(runner, recorder)
                ctx.tracker = tracker
                if display is not None:
                    display.tracker = tracker
                    tracker.listeners.append(display.settled)
                if flow.retry_delay_seconds:
                    time.sleep(flow.retry_delay_seconds)
    finally:
        thaw(flow_run.id)  # its maps' runs, frozen when built (see orchestration.collector)
        if display is not None:
            display.stop()
        _task_run.reset(task_token)
        _flow_run.reset(token)
        _serving.discard(id(runner))


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


def _attempt(flow: FlowSpec, flow_run: FlowRun, parameters: dict,
             tracker: RunTracker) -> tuple[State, Any]:
    """One call of the flow function: its final state and what the caller gets back."""
    what = f"Flow run {flow_run.name!r}"
    try:
        with print_as_log(flow.log_prints):
            args, kwargs = flow.validator.to_call(parameters, flow._bound_to)
            if flow.is_async:
                value = run_coroutine(flow.fn(*args, **kwargs), flow.timeout_seconds, what)
            elif flow.timeout_seconds is not None:
                value = call_with_timeout(flow.fn, args, kwargs, flow.timeout_seconds, what)
            else:
                value = flow.fn(*args, **kwargs)
        returned = resolve_futures_to_states(value)
        state = st.return_value_to_state(returned)
    except (FlowTimeoutError, TaskTimeoutError) as exc:
        timeout_error = FlowTimeoutError(str(exc))
        # submitted runs continue in the background
        return st.TimedOut(timeout_error, str(exc)), _RAISED
    except Exception as exc:  # noqa: BLE001 - the flow's own failure becomes its state
        state, returned = st.Failed(exc), _RAISED
    tracker.wait_all()
    state.ts = time.time()  # the run ends now, once its submitted task runs have ended
    _warn_unobserved(flow_run, tracker, state, state is not returned)
    return state, returned


def _warn_unobserved(flow_run: FlowRun, tracker: RunTracker, state: State,
                     made_here: bool) -> None:
    """Name each task run that failed while nothing in the flow looked at it.

    As in Prefect, such a failure does not fail the flow; it is logged as a WARNING here,
    stays Failed in the run record, and a Completed flow state made by fluvial says so."""
    unobserved = tracker.unobserved_failures()
    if not unobserved:
        return
    details = "; ".join(
        f"{f.task_run.name!r} ({f._final_state().name}: {f._final_state().message})"
        for f in unobserved
    )
    logger.warning("Flow run %r - %d task run(s) failed and nothing in the flow looked at "
                   "them: %s", flow_run.name, len(unobserved), details)
    if made_here and state.is_completed() and state.message is None:
        names = ", ".join(repr(f.task_run.name) for f in unobserved[:5])
        more = f" and {len(unobserved) - 5} more" if len(unobserved) > 5 else ""
        state.message = f"{len(unobserved)} task run(s) failed unobserved: {names}{more}"
