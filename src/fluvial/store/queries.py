"""The read API: what the CLI and any UI ask of the run record.

Every function opens the store (which also marks runs of dead drivers
crashed), reads, and closes it; results are frozen records from
:mod:`fluvial.store.records`.
"""

from __future__ import annotations

import re
from uuid import UUID

from fluvial.store._db import reading
from fluvial.store._errors import AmbiguousRunIdError, RunNotFoundError
from fluvial.store.records import (
    FlowRunRecord,
    LogRecord,
    StateRecord,
    TaskRunRecord,
)

__all__ = [
    "get_flow_run",
    "list_flow_runs",
    "logs",
    "resolve_run_id",
    "state_history",
    "task_runs",
]

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
