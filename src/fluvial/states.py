"""States: what a flow run or task run is doing, or how it ended.

A ``State`` is plain data: a ``StateType`` (an ``Enum``), a ``name`` that refines it
(``Cached`` is a COMPLETED state, ``TimedOut`` and ``NotReady`` are FAILED ones), a
message, a timestamp and, for final states, ``data``: the result, or the exception
that ended the run. ``State.result()`` returns the result or re-raises the original
exception with its traceback.
"""

from __future__ import annotations

import asyncio
import enum
import time
import traceback
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from fluvial.exceptions import FailedRun, RemoteTraceback

__all__ = [
    "AwaitingRetry",
    "Cached",
    "Cancelled",
    "Completed",
    "Crashed",
    "Failed",
    "NotReady",
    "Paused",
    "Pending",
    "Retrying",
    "Running",
    "Scheduled",
    "State",
    "StateGroup",
    "StateType",
    "StoredResult",
    "TimedOut",
]


class StoredResult:
    """A completed state's data when the task asked not to keep its result in memory
    (``cache_result_in_memory=False``): where the persisted record is. ``State.result()``
    reads it."""

    __slots__ = ("directory", "key")

    def __init__(self, directory: str, key: str) -> None:
        self.directory = directory
        self.key = key

    def load(self) -> Any:
        from pathlib import Path

        from fluvial.serialization import ResultStore

        return ResultStore(Path(self.directory)).read(self.key)

    def __reduce__(self) -> tuple[Any, ...]:
        return (StoredResult, (self.directory, self.key))

    def __repr__(self) -> str:
        return f"StoredResult({self.key[:12]!r} in {self.directory!r})"


class StateType(enum.Enum):
    SCHEDULED = "SCHEDULED"
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CRASHED = "CRASHED"
    CANCELLED = "CANCELLED"
    CANCELLING = "CANCELLING"
    PAUSED = "PAUSED"

    @property
    def is_final(self) -> bool:
        return self in _FINAL_TYPES


_FINAL_TYPES = frozenset(
    {StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED}
)
_RAISING_TYPES = frozenset({StateType.FAILED, StateType.CRASHED, StateType.CANCELLED})


class State:
    """One state of a run. Final states carry ``data`` (a result or an exception)."""

    __slots__ = ("type", "name", "message", "ts", "data", "start_ts", "run_id")

    def __init__(
        self,
        type: StateType,
        name: str | None = None,
        message: str | None = None,
        data: Any = None,
        ts: float | None = None,
        start_ts: float | None = None,
        run_id: Any = None,
    ) -> None:
        self.type = type
        self.name = name if name is not None else type.value.capitalize()
        self.message = message
        self.data = data
        self.ts = time.time() if ts is None else ts
        self.start_ts = start_ts  # when the run began running, on final states
        # the flow run or task run this state belongs to; None for a state made by hand
        # (``Completed(message=...)``), which a flow may return as its own final state
        self.run_id = run_id

    # -- timestamps ---------------------------------------------------------
    @property
    def timestamp(self) -> datetime:
        """When this state was entered (timezone-aware, UTC)."""
        return datetime.fromtimestamp(self.ts, tz=UTC)

    # -- predicates -----------------------------------------------------------
    def is_scheduled(self) -> bool:
        return self.type is StateType.SCHEDULED

    def is_pending(self) -> bool:
        return self.type is StateType.PENDING

    def is_running(self) -> bool:
        return self.type is StateType.RUNNING

    def is_completed(self) -> bool:
        return self.type is StateType.COMPLETED

    def is_failed(self) -> bool:
        return self.type is StateType.FAILED

    def is_crashed(self) -> bool:
        return self.type is StateType.CRASHED

    def is_cancelled(self) -> bool:
        return self.type is StateType.CANCELLED

    def is_cancelling(self) -> bool:
        return self.type is StateType.CANCELLING

    def is_paused(self) -> bool:
        return self.type is StateType.PAUSED

    def is_final(self) -> bool:
        return self.type in _FINAL_TYPES

    # -- results ------------------------------------------------------------
    def result(self, raise_on_failure: bool = True) -> Any:
        """The run's result; for a failed, crashed or cancelled state, raise its exception.

        With ``raise_on_failure=False`` the exception is returned instead of raised (or,
        for a flow failed by the run states it returned, those states).
        """
        if self.type in _RAISING_TYPES:
            exc = _exception_of(self)
            if raise_on_failure:
                raise exc
            data = self.data
            # a flow failed by the states it returned gives those states back (Prefect)
            return data if isinstance(data, State) or is_state_iterable(data) else exc
        data = self.data
        if type(data) is StoredResult:
            return data.load()
        return data

    async def aresult(self, raise_on_failure: bool = True) -> Any:
        """``result()`` for ``await``: the same value (or exception)."""
        return State.result(self, raise_on_failure=raise_on_failure)

    def copy(self, **changes: Any) -> State:
        fields = {slot: getattr(self, slot) for slot in State.__slots__}
        fields.update(changes)
        return State(**fields)

    def __repr__(self) -> str:
        return f"{self.name}({self.message!r})" if self.message else f"{self.name}()"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (self.type, self.name, self.message, self.ts) == (
            other.type,
            other.name,
            other.message,
            other.ts,
        )

    __hash__ = None  # type: ignore[assignment]

    # -- pickling: keep a worker's traceback across processes -----------------
    def __reduce__(self) -> tuple[Any, ...]:
        data = self.data
        remote_tb = None
        if isinstance(data, BaseException):
            if isinstance(data.__cause__, RemoteTraceback):
                remote_tb = data.__cause__.tb
            elif data.__traceback__ is not None:
                tb = "".join(traceback.format_exception(data))
                remote_tb = f'\n"""\n{tb}"""'
        return (_rebuild_state, (self.type.value, self.name, self.message, data, self.ts,
                                 self.start_ts, remote_tb, self.run_id))


def _rebuild_state(type_value: str, name: str, message: str | None, data: Any, ts: float,
                   start_ts: float | None = None, remote_tb: str | None = None,
                   run_id: Any = None) -> State:
    if remote_tb is not None and isinstance(data, BaseException):
        # exceptions lose __cause__ when pickled; the worker's traceback goes back on here
        data.__cause__ = RemoteTraceback(remote_tb)
    return State(StateType(type_value), name, message, data, ts, start_ts, run_id)


def _exception_of(state: State) -> BaseException:
    """The exception a failed state raises: its own, or (as in Prefect) that of the inner
    state it carries, or of the first failed one of the states it carries."""
    data = state.data
    if isinstance(data, BaseException):
        return data
    if isinstance(data, State) and data.type in _RAISING_TYPES:
        return _exception_of(data)
    if is_state_iterable(data):
        for inner in data:
            if inner.type in _RAISING_TYPES:
                return _exception_of(inner)
    return FailedRun(state.message or f"Run ended in state {state.name!r}")


def is_state_iterable(value: Any) -> bool:
    """A non-empty list, tuple or set whose items are all states (Prefect's rule)."""
    return (isinstance(value, (list, tuple, set, frozenset)) and bool(value)
            and all(isinstance(v, State) for v in value))


def return_value_to_state(value: Any) -> State:
    """A flow's final state from what it returned (futures already resolved to states),
    by Prefect's rules:

    * a state made by hand (``Completed(message=...)``) is the final state itself;
    * a run's state, or a non-empty list/tuple/set of only states, gives a state of the
      group: Completed if all completed, else Cancelled, Paused or Failed, with the
      returned value as its data (``result()`` raises the first failure's exception);
    * anything else (``None``, a plain value, a mix of values and states) is Completed.
    """
    if isinstance(value, State):
        if value.run_id is None:
            return value
        group = StateGroup([value])
    elif is_state_iterable(value):
        group = StateGroup(value)
    else:
        return State(StateType.COMPLETED, data=value)
    if group.all_completed():
        return State(StateType.COMPLETED, message="All states completed.", data=value)
    if group.any_cancelled():
        return State(StateType.CANCELLED, data=value,
                     message=f"{group.cancelled_count}/{group.total_count} states cancelled.")
    if group.any_paused():
        return State(StateType.PAUSED, data=value,
                     message=f"{group.paused_count}/{group.total_count} states paused.")
    if group.any_failed():
        message = f"{group.fail_count}/{group.total_count} states failed."
    elif not group.all_final():
        message = f"{group.not_final_count}/{group.total_count} states are not final."
    else:
        message = "Given states: " + group.counts_message()
    return State(StateType.FAILED, message=message, data=value)


class _AwaitableResultState(State):
    """A state handed back by an async flow call: in a thread running an event loop,
    ``result()`` returns an awaitable (``await state.result()``), as Prefect's does."""

    __slots__ = ()

    def result(self, raise_on_failure: bool = True) -> Any:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return State.result(self, raise_on_failure)
        return self.aresult(raise_on_failure)


def awaitable_result(state: State) -> State:
    """Make ``state.result()`` awaitable in async code (the object stays the same)."""
    if type(state) is State:
        state.__class__ = _AwaitableResultState
    return state


class StateGroup:
    """Counts over a group of states, as Prefect's ``StateGroup`` gives them."""

    def __init__(self, states: Iterable[State]) -> None:
        self.states = list(states)
        self.type_counts: Counter[StateType] = Counter(state.type for state in self.states)

    @property
    def total_count(self) -> int:
        return len(self.states)

    @property
    def fail_count(self) -> int:
        return self.type_counts.get(StateType.FAILED, 0) + self.type_counts.get(
            StateType.CRASHED, 0)

    @property
    def cancelled_count(self) -> int:
        return self.type_counts.get(StateType.CANCELLED, 0)

    @property
    def paused_count(self) -> int:
        return self.type_counts.get(StateType.PAUSED, 0)

    @property
    def final_count(self) -> int:
        return sum(n for t, n in self.type_counts.items() if t.is_final)

    @property
    def not_final_count(self) -> int:
        return self.total_count - self.final_count

    def all_completed(self) -> bool:
        return self.type_counts.get(StateType.COMPLETED, 0) == self.total_count

    def any_cancelled(self) -> bool:
        return self.cancelled_count > 0

    def any_failed(self) -> bool:
        return self.fail_count > 0

    def any_paused(self) -> bool:
        return self.paused_count > 0

    def all_final(self) -> bool:
        return self.final_count == self.total_count

    def counts_message(self) -> str:
        """``"total=3, not_final=1, 'COMPLETED'=1, 'FAILED'=1"``, as Prefect words it."""
        messages = [f"total={self.total_count}"]
        if self.not_final_count:
            messages.append(f"not_final={self.not_final_count}")
        messages += [f"{t.value!r}={n}" for t, n in self.type_counts.items() if n]
        return ", ".join(messages)

    def __repr__(self) -> str:
        return f"StateGroup<{self.counts_message()}>"


# -- constructors ---------------------------------------------------------------


def Scheduled(message: str | None = None, name: str = "Scheduled") -> State:
    return State(StateType.SCHEDULED, name, message)


def Pending(message: str | None = None, name: str = "Pending") -> State:
    return State(StateType.PENDING, name, message)


def Running(message: str | None = None, name: str = "Running") -> State:
    return State(StateType.RUNNING, name, message)


def Completed(data: Any = None, message: str | None = None, name: str = "Completed") -> State:
    return State(StateType.COMPLETED, name, message, data)


def Cached(data: Any = None, message: str | None = None) -> State:
    return State(StateType.COMPLETED, "Cached", message, data)


def Failed(
    data: BaseException | None = None, message: str | None = None, name: str = "Failed"
) -> State:
    if message is None and data is not None:
        message = _describe(data)
    return State(StateType.FAILED, name, message, data)


def TimedOut(data: BaseException | None = None, message: str | None = None) -> State:
    return Failed(data, message, name="TimedOut")


def NotReady(message: str, data: BaseException | None = None) -> State:
    return Failed(data, message, name="NotReady")


def Crashed(data: BaseException | None = None, message: str | None = None) -> State:
    if message is None and data is not None:
        message = _describe(data)
    return State(StateType.CRASHED, "Crashed", message, data)


def Cancelled(message: str | None = None, data: BaseException | None = None) -> State:
    return State(StateType.CANCELLED, "Cancelled", message, data)


def Cancelling(message: str | None = None) -> State:
    """A running run told to stop; it becomes ``Cancelled`` once its process has exited."""
    return State(StateType.CANCELLING, "Cancelling", message)


def Paused(message: str | None = None) -> State:
    return State(StateType.PAUSED, "Paused", message)


def Retrying(message: str | None = None) -> State:
    return State(StateType.RUNNING, "Retrying", message)


def AwaitingRetry(message: str | None = None) -> State:
    return State(StateType.SCHEDULED, "AwaitingRetry", message)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
