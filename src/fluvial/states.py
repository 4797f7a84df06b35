"""States: what a flow run or task run is doing, or how it ended.

A ``State`` is plain data: a ``StateType`` (an ``Enum``), a ``name`` that refines it
(``Cached`` is a COMPLETED state, ``TimedOut`` and ``NotReady`` are FAILED ones), a
message, a timestamp and, for final states, ``data``: the result, or the exception
that ended the run. ``State.result()`` returns the result or re-raises the original
exception with its traceback.
"""

from __future__ import annotations

import enum
import time
import traceback
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
    "StateType",
    "TimedOut",
]


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

    __slots__ = ("type", "name", "message", "ts", "data", "start_ts")

    def __init__(
        self,
        type: StateType,
        name: str | None = None,
        message: str | None = None,
        data: Any = None,
        ts: float | None = None,
        start_ts: float | None = None,
    ) -> None:
        self.type = type
        self.name = name if name is not None else type.value.capitalize()
        self.message = message
        self.data = data
        self.ts = time.time() if ts is None else ts
        self.start_ts = start_ts  # when the run began running, on final states

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

        With ``raise_on_failure=False`` the exception is returned instead of raised.
        """
        if self.type in _RAISING_TYPES:
            exc = self.data if isinstance(self.data, BaseException) else FailedRun(
                self.message or f"Run ended in state {self.name!r}"
            )
            if raise_on_failure:
                raise exc
            return exc
        return self.data

    def copy(self, **changes: Any) -> State:
        fields = {slot: getattr(self, slot) for slot in self.__slots__}
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
                                 self.start_ts, remote_tb))


def _rebuild_state(type_value: str, name: str, message: str | None, data: Any, ts: float,
                   start_ts: float | None = None, remote_tb: str | None = None) -> State:
    if remote_tb is not None and isinstance(data, BaseException):
        # exceptions lose __cause__ when pickled; the worker's traceback goes back on here
        data.__cause__ = RemoteTraceback(remote_tb)
    return State(StateType(type_value), name, message, data, ts, start_ts)


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
