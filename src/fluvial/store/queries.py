"""The read API: what the CLI and any UI ask of the run record, and the records it returns.

Every function opens the store, reads, and closes it; none writes (crash
recovery is :func:`fluvial.store.recover`, run once per process); results are small frozen dataclasses built
from rows (:class:`FlowRunRecord`, :class:`TaskRunRecord`, ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID

from fluvial.exceptions import AmbiguousRunIdError, RunNotFoundError
from fluvial.store.connection import reading

__all__ = [
    "FlowRunRecord",
    "LimitRecord",
    "LogRecord",
    "StateRecord",
    "TaskRunCount",
    "TaskRunRecord",
    "get_flow_run",
    "iter_task_runs",
    "list_flow_runs",
    "logs",
    "resolve_run_id",
    "state_history",
    "task_run_counts",
    "task_runs",
]

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


_PREFIX = re.compile(r"^[0-9a-f-]{1,36}$")


def _key(run_id: UUID | str) -> str:
    return str(run_id if isinstance(run_id, UUID) else UUID(str(run_id)))


def list_flow_runs(
    flow_name: str | None = None, state: str | None = None, limit: int = 20
) -> list[FlowRunRecord]:
    """The newest flow runs first, optionally of one flow and in one state.

    ``state`` matches a state type (``COMPLETED``) or a state name (``Cached``),
    in any case.
    """
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise ValueError(f"limit must be a positive integer, got {limit!r}")
    where: list[str] = []
    params: list[object] = []
    if flow_name is not None:
        where.append("flow_name = ?")
        params.append(flow_name)
    if state is not None:
        state = str(getattr(state, "value", state))
        where.append("(state_type = ? OR lower(state_name) = ?)")
        params += [state.upper(), state.lower()]
    sql = f"SELECT {FlowRunRecord.COLUMNS} FROM flow_runs"
    if where:
        sql += " WHERE " + " AND ".join(where)
    sql += " ORDER BY created DESC LIMIT ?"
    with reading() as conn:
        rows = conn.execute(sql, (*params, limit)).fetchall()
    return [FlowRunRecord.from_row(row) for row in rows]


def resolve_run_id(prefix: str | UUID) -> UUID:
    """The flow run id starting with ``prefix`` (a full id works too).

    Raises ``RunNotFoundError`` when none matches, ``AmbiguousRunIdError`` when
    several do (both are ``LookupError``).
    """
    text = str(prefix).strip().lower()
    if not _PREFIX.match(text):
        raise RunNotFoundError(f"{str(prefix)!r} is not a flow run id or id prefix")
    with reading() as conn:
        rows = conn.execute(
            "SELECT id FROM flow_runs WHERE id >= ? AND id < ? ORDER BY id LIMIT 6",
            (text, text + "~"),
        ).fetchall()
    if not rows:
        raise RunNotFoundError(f"no flow run id starts with {text!r}")
    if len(rows) > 1:
        shown = ", ".join(r[0] for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise AmbiguousRunIdError(
            f"{text!r} matches several flow runs ({shown}); give more characters"
        )
    return UUID(rows[0][0])


def get_flow_run(run_id: UUID | str) -> FlowRunRecord:
    """One flow run by its full id; ``RunNotFoundError`` if absent."""
    with reading() as conn:
        row = conn.execute(
            f"SELECT {FlowRunRecord.COLUMNS} FROM flow_runs WHERE id = ?", (_key(run_id),)
        ).fetchone()
    if row is None:
        raise RunNotFoundError(f"no flow run with id {run_id}")
    return FlowRunRecord.from_row(row)


def task_runs(flow_run_id: UUID | str) -> list[TaskRunRecord]:
    """The task runs of a flow run, in creation order."""
    with reading() as conn:
        rows = conn.execute(
            f"SELECT {TaskRunRecord.COLUMNS} FROM task_runs WHERE flow_run_id = ? "
            "ORDER BY created, rowid",
            (_key(flow_run_id),),
        ).fetchall()
    return [TaskRunRecord.from_row(row) for row in rows]


@dataclass(frozen=True)
class TaskRunCount:
    """How many task runs of one task ended (or stand) in one state."""

    task_key: str | None
    state_type: str | None
    state_name: str | None
    count: int


#: the states ``iter_task_runs(failures_first=True)`` puts first
FAILURE_TYPES = ("FAILED", "CRASHED")
_FAILURE_SQL = ", ".join(f"'{t}'" for t in FAILURE_TYPES)


def task_run_counts(flow_run_id: UUID | str) -> list[TaskRunCount]:
    """The task runs of a flow run counted per task and state: failures first, then
    the largest counts. One aggregate query: its cost does not grow with the output."""
    with reading() as conn:
        rows = conn.execute(
            "SELECT task_key, state_type, state_name, COUNT(*) FROM task_runs "
            "WHERE flow_run_id = ? GROUP BY task_key, state_type, state_name",
            (_key(flow_run_id),),
        ).fetchall()
    counts = [TaskRunCount(r[0], r[1], r[2], int(r[3])) for r in rows]
    counts.sort(key=lambda c: (c.state_type not in FAILURE_TYPES, -c.count,
                               c.task_key or "", c.state_name or ""))
    return counts


def iter_task_runs(flow_run_id: UUID | str, *, failures_first: bool = True,
                   limit: int | None = None, page_size: int = 1000) -> Iterator[TaskRunRecord]:
    """The task runs of a flow run, streamed: failed and crashed ones first (with
    ``failures_first``), each group in creation order; at most ``limit`` of them.

    Pages of ``page_size`` rows are read by keyset (``(created, rowid)`` after the last
    one seen), each a statement of its own on an autocommit connection, so memory stays
    bounded and no transaction is held open between pages however many task runs there
    are, on SQLite and PostgreSQL alike.
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                              or limit < 0):
        raise ValueError(f"limit must be a non-negative integer or None, got {limit!r}")
    key = _key(flow_run_id)
    groups = ([f"state_type IN ({_FAILURE_SQL})",
               f"(state_type IS NULL OR state_type NOT IN ({_FAILURE_SQL}))"]
              if failures_first else ["1 = 1"])
    left = limit
    with reading() as conn:
        for condition in groups:
            after: tuple[float, int] | None = None
            while left is None or left > 0:
                size = page_size if left is None else min(page_size, left)
                sql = (f"SELECT {TaskRunRecord.COLUMNS}, created, rowid FROM task_runs "
                       f"WHERE flow_run_id = ? AND {condition}")
                params: tuple[object, ...] = (key,)
                if after is not None:
                    sql += " AND (created > ? OR (created = ? AND rowid > ?))"
                    params += (after[0], after[0], after[1])
                sql += " ORDER BY created, rowid LIMIT ?"
                rows = conn.execute(sql, (*params, size)).fetchall()
                for row in rows:
                    yield TaskRunRecord.from_row(tuple(row[:-2]))
                if left is not None:
                    left -= len(rows)
                if len(rows) < size:
                    break
                after = (rows[-1][-2], rows[-1][-1])


def state_history(run_id: UUID | str) -> list[StateRecord]:
    """Every state of a flow run or task run, oldest first."""
    with reading() as conn:
        rows = conn.execute(
            f"SELECT {StateRecord.COLUMNS} FROM state_history WHERE run_id = ? ORDER BY ts, seq",
            (_key(run_id),),
        ).fetchall()
    return [StateRecord.from_row(row) for row in rows]


def logs(run_id: UUID | str) -> list[LogRecord]:
    """The logs of a flow run and of its task runs, in time order."""
    with reading() as conn:
        rows = conn.execute(
            """SELECT l.run_id, l.level, l.message, l.ts, t.name
               FROM logs AS l LEFT JOIN task_runs AS t ON t.id = l.run_id
               WHERE l.run_id = ?1
                  OR l.run_id IN (SELECT id FROM task_runs WHERE flow_run_id = ?1)
               ORDER BY l.ts, l.seq""",
            (_key(run_id),),
        ).fetchall()
    return [LogRecord(UUID(r[0]) if r[0] else None, r[1], r[2], r[3], r[4]) for r in rows]
