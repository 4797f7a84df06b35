"""The read API's records: small frozen dataclasses built from rows."""

from __future__ import annotations

import json
from dataclasses import dataclass
from uuid import UUID

__all__ = ["FlowRunRecord", "LimitRecord", "LogRecord", "StateRecord", "TaskRunRecord"]


def _duration(start: float | None, end: float | None) -> float | None:
    return end - start if start is not None and end is not None else None


def _uuid(value: str | None) -> UUID | None:
    return UUID(value) if value else None


def _tags(value: str | None) -> tuple[str, ...]:
    return tuple(json.loads(value)) if value else ()


@dataclass(frozen=True)
class FlowRunRecord:
    id: UUID
    name: str | None
    flow_name: str | None
    parameters: dict[str, str]
    tags: tuple[str, ...]
    parent_task_run_id: UUID | None
    created: float | None
    pid: int | None
    hostname: str | None
    heartbeat: float | None
    state_type: str | None
    state_name: str | None
    state_message: str | None
    start_time: float | None
    end_time: float | None
    result_location: str | None

    COLUMNS = (
        "id, name, flow_name, parameters, tags, parent_task_run_id, created, pid, hostname, "
        "heartbeat, state_type, state_name, state_message, start_time, end_time, result_location"
    )

    @property
    def duration(self) -> float | None:
        """Seconds from the first RUNNING state to the final state, if both exist."""
        return _duration(self.start_time, self.end_time)

    @classmethod
    def from_row(cls, row: tuple) -> FlowRunRecord:
        (id_, name, flow_name, parameters, tags, parent, *rest) = row
        return cls(
            UUID(id_),
            name,
            flow_name,
            json.loads(parameters) if parameters else {},
            _tags(tags),
            _uuid(parent),
            *rest,
        )


@dataclass(frozen=True)
class TaskRunRecord:
    id: UUID
    flow_run_id: UUID | None
    name: str | None
    task_key: str | None
    tags: tuple[str, ...]
    created: float | None
    state_type: str | None
    state_name: str | None
    state_message: str | None
    start_time: float | None
    end_time: float | None
    result_location: str | None

    COLUMNS = (
        "id, flow_run_id, name, task_key, tags, created, state_type, state_name, "
        "state_message, start_time, end_time, result_location"
    )

    @property
    def duration(self) -> float | None:
        """Seconds from the first RUNNING state to the final state, if both exist."""
        return _duration(self.start_time, self.end_time)

    @classmethod
    def from_row(cls, row: tuple) -> TaskRunRecord:
        id_, flow_run_id, name, task_key, tags, *rest = row
        return cls(UUID(id_), _uuid(flow_run_id), name, task_key, _tags(tags), *rest)


@dataclass(frozen=True)
class StateRecord:
    run_id: UUID
    type: str
    name: str | None
    message: str | None
    ts: float
    result_location: str | None

    COLUMNS = "run_id, type, name, message, ts, result_location"

    @classmethod
    def from_row(cls, row: tuple) -> StateRecord:
        return cls(UUID(row[0]), *row[1:])


@dataclass(frozen=True)
class LogRecord:
    run_id: UUID | None
    level: int
    message: str
    ts: float
    task_run_name: str | None = None
    """Name of the task run that logged it; None for the flow run's own logs."""


@dataclass(frozen=True)
class LimitRecord:
    tag: str
    limit: int
    slot_decay_per_second: float | None
    created: float
    updated: float
