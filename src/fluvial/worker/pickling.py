"""Pickling a task run to send it, and its final state to send it back: the checks and
their error messages, in one place.

Before a run leaves the driver, ``check_submission`` pickles its task (once per task)
and its arguments (unless they are plain scalars and upstream markers) and raises
``SerializationFailure`` naming the task and the parameter. On the worker,
``picklable_state`` turns a state whose result or exception cannot be pickled into a
``Failed`` state naming the task, so the run is not lost to an opaque backend error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fluvial.exceptions import SerializationFailure
from fluvial.states import Failed, State, StateType
from fluvial.worker.arguments import ATOMIC, Upstream

if TYPE_CHECKING:
    from fluvial.runs import Submission, TaskRun

__all__ = ["PickleCheck", "picklable_state", "unpicklable_arguments", "unpicklable_task"]

_PLAIN = ATOMIC | {Upstream}


def unpicklable_task(task_run: TaskRun, exc: BaseException) -> SerializationFailure:
    """The error for a task (function, hooks, options) that cannot be pickled."""
    error = SerializationFailure(
        f"task {task_run.task.name!r} cannot be pickled to send it to a worker: {exc}")
    error.__cause__ = exc
    return error


def unpicklable_arguments(task_run: TaskRun, exc: BaseException) -> SerializationFailure:
    """The error for arguments that cannot be pickled, naming the first bad parameter."""
    import cloudpickle  # on first use: `import fluvial` stays without it

    message = f"task {task_run.task.name!r}: its arguments cannot be pickled: {exc}"
    for name, value in task_run.parameters.items():
        if type(value) in _PLAIN:
            continue
        try:
            cloudpickle.dumps(value)
        except Exception:
            message = (f"task {task_run.task.name!r}: parameter {name!r} "
                       f"({type(value).__name__}) cannot be pickled to send it to a worker: "
                       f"{exc}")
            break
    error = SerializationFailure(message)
    error.__cause__ = exc
    return error


class PickleCheck:
    """Fail fast, in the driver, on a task or argument that cannot be pickled."""

    def __init__(self) -> None:
        self._checked_tasks: set[int] = set()

    def __call__(self, submission: Submission) -> None:
        import cloudpickle  # on first use: `import fluvial` stays without it

        task_run = submission.task_run
        task = task_run.task
        if id(task) not in self._checked_tasks:
            try:
                cloudpickle.dumps(task)
            except Exception as exc:
                raise unpicklable_task(task_run, exc) from exc
            self._checked_tasks.add(id(task))
        if all(type(a) in _PLAIN for a in task_run.args) and all(
            type(v) in _PLAIN for v in task_run.kwargs.values()
        ):
            return  # scalars and upstream markers: nothing that could fail to pickle
        try:
            cloudpickle.dumps((task_run.args, task_run.kwargs))
        except Exception as exc:
            raise unpicklable_arguments(task_run, exc) from exc


def picklable_state(task_run: TaskRun, state: State) -> State:
    """On a worker: ``state``, or a ``Failed`` state naming the task and its return value
    (or exception) when it could not be pickled to move it. Plain scalars skip the check."""
    data = state.data
    if type(data) in ATOMIC:
        return state
    import cloudpickle  # on first use: `import fluvial` stays without it

    try:
        cloudpickle.dumps(data)
    except Exception as exc:
        what = "return value" if state.type is StateType.COMPLETED else "exception"
        error = SerializationFailure(
            f"task {task_run.task.name!r}: its {what} ({type(data).__name__}) cannot be "
            f"pickled to move it off the worker: {exc}")
        return Failed(error, str(error))
    return state
