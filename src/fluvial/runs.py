"""The records of one flow run and one task run, as hooks and ``get_run_context`` see them.

A ``TaskRun`` is also what a runner ships to a worker: the task, its (templated)
arguments, its tags and ids. A ``Submission`` is what the driver hands a runner: a
task run and the futures it waits on. It is kept small and picklable; names and bound
parameters are computed only when someone asks for them.
"""

from __future__ import annotations

import datetime
import inspect
import random
import time
import uuid
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fluvial.futures import Future
    from fluvial.futures._base import Subscriber
    from fluvial.protocols import FlowSpec, TaskSpec

__all__ = ["FlowRun", "Submission", "TaskRun", "time_ordered_id"]

_new = object.__new__
_set = object.__setattr__
_UUID = uuid.UUID
_UNKNOWN = uuid.SafeUUID.unknown
_random_bits = random.getrandbits  # reseeded in a forked child by the random module
_time_ns = time.time_ns
_V7 = (0x7 << 76) | (0x2 << 62)  # the version (7) and variant (RFC) bits


def time_ordered_id() -> uuid.UUID:
    """A new task run id: a version 7 UUID (RFC 9562), ordered by its creation time.

    48 bits of Unix milliseconds, 12 bits of the fraction of that millisecond, 62
    random bits. Ids made one after another sort (as text and as bytes) in creation
    order, so the run record's indexes on run ids take each new one at their end
    instead of at a random page: the writer's cost stays flat as the record grows.
    The random half is the end of the id, which is where a task run's default name
    takes its 8 hex digits from. Three times cheaper than ``uuid.uuid4()``: the UUID is
    built from its int without ``UUID.__init__``'s checks.
    """
    ms, fraction = divmod(_time_ns(), 1_000_000)
    value = (ms << 80) | ((fraction * 4096 // 1_000_000) << 64) | _V7 | _random_bits(62)
    run_id = _new(_UUID)
    _set(run_id, "int", value)
    _set(run_id, "is_safe", _UNKNOWN)
    return run_id


def bind_parameters(fn: Any, args: tuple, kwargs: dict) -> dict[str, Any]:
    """Map a call's arguments to parameter names (defaults applied)."""
    try:
        bound = inspect.signature(fn).bind(*args, **kwargs)
    except TypeError:
        return {f"arg{i}": a for i, a in enumerate(args)} | dict(kwargs)
    bound.apply_defaults()
    return dict(bound.arguments)


class TaskRun:
    """One run of a task: what it runs, with which arguments, and how many attempts so far."""

    __slots__ = ("id", "task", "args", "kwargs", "tags", "flow_run_id", "run_count", "_name",
                 "upstream_names", "flow_parameters", "lineage_id", "allowed_failures",
                 "log_prints")

    def __init__(
        self,
        task: TaskSpec,
        args: tuple,
        kwargs: dict,
        tags: frozenset[str],
        flow_run_id: uuid.UUID | None,
        id: uuid.UUID | None = None,
    ) -> None:
        self.id = id if id is not None else time_ordered_id()
        self.task = task
        self.args = args
        self.kwargs = kwargs
        self.tags = tags
        self.flow_run_id = flow_run_id
        self.run_count = 0
        self._name: str | None = None
        # names of the upstream runs whose states are handed to the engine, in order
        self.upstream_names: tuple[str, ...] = ()
        self.flow_parameters: dict[str, Any] | None = None  # for policies that read them
        self.lineage_id: uuid.UUID | None = None  # set only in a retried flow run
        # indexes of upstreams given in ``allow_failure(...)``: their failure does not stop
        # this run, which receives the upstream's exception instead
        self.allowed_failures: frozenset[int] = frozenset()
        # the flow's ``log_prints`` for a task that leaves it unset (None): decided in the
        # driver, so a run in another process prints into the log as in a thread
        self.log_prints: bool | None = None

    @property
    def task_name(self) -> str:
        return self.task.name

    @property
    def parameters(self) -> dict[str, Any]:
        """The arguments of this run by parameter name (futures appear as given)."""
        return bind_parameters(self.task.fn, self.args, self.kwargs)

    @property
    def name(self) -> str:
        if self._name is None:
            self._name = self.task.render_run_name(self)
        return self._name

    def __getstate__(self) -> tuple:
        return (self.task, *self.detached())

    def __setstate__(self, state: tuple) -> None:
        self._attach(state[0], state[1:])

    def detached(self) -> tuple:
        """Everything but the task: what a runner ships per run when it sends the task
        itself once (``TaskRun.attached(task, detached)`` rebuilds the run)."""
        return (self.id, self.args, self.kwargs, self.tags, self.flow_run_id, self.run_count,
                self._name, self.upstream_names, self.flow_parameters, self.lineage_id,
                self.allowed_failures, self.log_prints)

    @classmethod
    def attached(cls, task: TaskSpec, detached: tuple) -> TaskRun:
        run = cls.__new__(cls)
        run._attach(task, detached)
        return run

    def _attach(self, task: TaskSpec, detached: tuple) -> None:
        self.task = task
        (self.id, self.args, self.kwargs, self.tags, self.flow_run_id, self.run_count,
         self._name, self.upstream_names, self.flow_parameters,
         self.lineage_id) = detached[:10]
        self.allowed_failures = detached[10] if len(detached) > 10 else frozenset()
        self.log_prints = detached[11] if len(detached) > 11 else None

    def __repr__(self) -> str:
        return f"TaskRun(name={self.name!r}, id={self.id})"


class Submission:
    """One task run ready to hand to a runner: its upstream futures (data first), and
    the driver's subscriber that the run's future reports to (``Future.of``)."""

    __slots__ = ("task_run", "upstreams", "n_data", "subscriber")

    def __init__(self, task_run: TaskRun, upstreams: list[Future], n_data: int,
                 subscriber: Subscriber | None = None) -> None:
        self.task_run = task_run
        self.upstreams = upstreams
        self.n_data = n_data
        self.subscriber = subscriber


class FlowRun:
    """One run of a flow."""

    __slots__ = ("id", "flow", "name", "parameters", "tags", "run_count", "parent_task_run_id",
                 "state", "lineage_id", "parent_flow_run_id", "root_flow_run_id",
                 "scheduled_start_time")

    def __init__(self, flow: FlowSpec, name: str, parameters: dict[str, Any], tags: frozenset[str],
                 parent_task_run_id: uuid.UUID | None = None,
                 lineage_id: uuid.UUID | None = None,
                 parent_flow_run_id: uuid.UUID | None = None,
                 root_flow_run_id: uuid.UUID | None = None,
                 scheduled_start_time: datetime.datetime | None = None) -> None:
        self.id = uuid.uuid4()
        self.flow = flow
        self.name = name
        self.parameters = parameters
        self.tags = tags
        self.run_count = 0
        self.parent_task_run_id = parent_task_run_id
        # the flow run this one is a subflow of, and the top-level run of the tree
        self.parent_flow_run_id = parent_flow_run_id
        self.root_flow_run_id = root_flow_run_id or self.id
        # when the run was meant to start (a deployment's schedule); else when it was created
        self.scheduled_start_time = scheduled_start_time or datetime.datetime.now(datetime.UTC)
        self.state: Any = None
        # the first run of a chain of retries (``fluvial runs retry``); itself otherwise
        self.lineage_id = lineage_id or self.id

    @property
    def flow_name(self) -> str:
        return self.flow.name

    def __repr__(self) -> str:
        return f"FlowRun(name={self.name!r}, id={self.id})"
