"""The SQL that writes run rows: shared by the writer and crash recovery.

A run's row carries its latest state, but that state is always *derived* from
``state_history`` (latest by timestamp, then by arrival), never patched in
place. Rows and states may therefore arrive in any order, across batches and
across processes, and the row still ends up agreeing with its history. Every
function here runs inside the caller's transaction, on SQLite or PostgreSQL:
the SQL is the same (see :mod:`fluvial.store.dialects`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from fluvial.store.dialects import dialect_of, id_table
from fluvial.store.schema import FINAL_SQL

__all__ = [
    "NO_STATE",
    "apply_latest",
    "existing",
    "stale",
    "insert_edges",
    "insert_completed_states",
    "insert_completed_task_runs",
    "insert_flow_runs",
    "insert_logs",
    "insert_settled_states",
    "insert_states",
    "insert_task_runs",
    "refresh_flow_runs",
    "refresh_task_runs",
    "update_heartbeats",
]

# The latest-state columns of a run, as folded from a batch's states:
# (state_type, state_name, state_message, state_ts, start_time, end_time, result_location)
LatestState = tuple[
    str | None, str | None, str | None, float | None, float | None, float | None, str | None
]
NO_STATE: LatestState = (None, None, None, None, None, None, None)
# (id, name, flow_name, parameters, tags, parent_task_run_id, created, pid, hostname, heartbeat)
# + LatestState
FlowRunRow = tuple
# (id, flow_run_id, name, task_key, tags, created) + LatestState
TaskRunRow = tuple
# A task run that ran from start and completed plainly at end:
# (id, flow_run_id, name, task_key, tags, start, end)
CompletedRun = tuple[str, str | None, str, str, str, float, float]
# (run_id, type, name, message, ts, result_location)
StateRow = tuple[str, str, str | None, str | None, float, str | None]
# (run_id, level, message, ts)
LogRow = tuple[str | None, int, str, float]

_STATE_COLUMNS = (
    "state_type, state_name, state_message, state_ts, start_time, end_time, result_location"
)

_INSERT_FLOW_RUN = f"""
INSERT INTO flow_runs (id, name, flow_name, parameters, tags, parent_task_run_id,
                       created, pid, hostname, heartbeat, {_STATE_COLUMNS})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (id) DO UPDATE SET
    name = excluded.name, flow_name = excluded.flow_name, parameters = excluded.parameters,
    tags = excluded.tags, parent_task_run_id = excluded.parent_task_run_id,
    created = excluded.created, pid = excluded.pid, hostname = excluded.hostname,
    heartbeat = excluded.heartbeat
"""

_ON_CONFLICT_TASK_RUN = """
ON CONFLICT (id) DO UPDATE SET
    flow_run_id = excluded.flow_run_id, name = excluded.name, task_key = excluded.task_key,
    tags = excluded.tags, created = excluded.created
"""
_INSERT_TASK_RUN = f"""
INSERT INTO task_runs (id, flow_run_id, name, task_key, tags, created, {_STATE_COLUMNS})
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
{_ON_CONFLICT_TASK_RUN}"""
# A run that ran from ?6 and completed plainly at ?7: the state columns are constants
# (pysqlite binds each parameter in Python: fewer parameters, less time per row)
_INSERT_COMPLETED_TASK_RUN = f"""
INSERT INTO task_runs (id, flow_run_id, name, task_key, tags, created, {_STATE_COLUMNS})
VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'COMPLETED', 'Completed', NULL, ?7, ?6, ?7, NULL)
{_ON_CONFLICT_TASK_RUN}"""

_INSERT_STATE = """
INSERT INTO state_history (run_id, type, name, message, ts, result_location)
VALUES (?, ?, ?, ?, ?, ?)
"""

# A settled run's two states, with their constant columns in the SQL: fewer to bind
_INSERT_RUNNING = """
INSERT INTO state_history (run_id, type, name, ts) VALUES (?, 'RUNNING', 'Running', ?)
"""
_INSERT_FINAL = "INSERT INTO state_history (run_id, type, name, message, ts) VALUES (?, ?, ?, ?, ?)"
_INSERT_COMPLETED = """
INSERT INTO state_history (run_id, type, name, ts) VALUES (?, 'COMPLETED', 'Completed', ?)
"""

_INSERT_LOG = "INSERT INTO logs (run_id, level, message, ts) VALUES (?, ?, ?, ?)"

_HEARTBEAT = """
UPDATE flow_runs SET heartbeat = CASE WHEN heartbeat IS NULL OR heartbeat < ?1 THEN ?1
                                      ELSE heartbeat END
WHERE id = ?2
"""

_NEWER = "state_ts IS NULL OR state_ts <= ?1"
_APPLY_LATEST = f"""
UPDATE {{table}} SET
    state_type = CASE WHEN {_NEWER} THEN ?2 ELSE state_type END,
    state_name = CASE WHEN {_NEWER} THEN ?3 ELSE state_name END,
    state_message = CASE WHEN {_NEWER} THEN ?4 ELSE state_message END,
    end_time = CASE WHEN {_NEWER} THEN ?5 ELSE end_time END,
    result_location = CASE WHEN {_NEWER} THEN ?6 ELSE result_location END,
    state_ts = CASE WHEN {_NEWER} THEN ?1 ELSE state_ts END,
    start_time = CASE WHEN start_time IS NULL OR start_time > ?7
                      THEN coalesce(?7, start_time) ELSE start_time END
WHERE id = ?8
"""

# The latest state, its end time when final, and the first RUNNING time.
_REFRESH = f"""
UPDATE {{table}} SET
    (state_type, state_name, state_message, state_ts, result_location, end_time) = (
        SELECT type, name, message, ts, result_location,
               CASE WHEN type IN ({FINAL_SQL}) THEN ts END
        FROM state_history WHERE run_id = ?1
        ORDER BY ts DESC, seq DESC LIMIT 1),
    start_time = (SELECT min(ts) FROM state_history WHERE run_id = ?1 AND type = 'RUNNING')
WHERE id = ?1
"""
_REFRESH_FLOW_RUNS = _REFRESH.format(table="flow_runs")
_REFRESH_TASK_RUNS = _REFRESH.format(table="task_runs")


RANGE_PROBE_MIN = 64  # ids from which one range query is tried first
RANGE_PROBE_ROWS = 256  # rows of the range read before it gives way to the exact query


def stale(conn: Any, table: str, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` whose row exists already or that have states already.

    Their latest state cannot be folded from one batch: it must be refreshed
    from the whole history after the batch is written.

    Task run ids are time-ordered, so a batch's new runs usually lie beyond
    every run recorded: one look at the range ``[min(ids), max(ids)]`` of both
    indexes answers for all of them (the ids found there, intersected with
    ``ids``). When that range holds more than :data:`RANGE_PROBE_ROWS` rows
    (random ids, another driver's runs in between), each id is probed.
    """
    ids = list(ids)
    if not ids:
        return set()
    if len(ids) >= RANGE_PROBE_MIN:
        found = conn.execute(
            f"""SELECT id FROM (
                    SELECT run_id AS id FROM state_history WHERE run_id BETWEEN ?1 AND ?2
                    UNION ALL
                    SELECT id FROM {table} WHERE id BETWEEN ?1 AND ?2) AS r
                LIMIT ?3""",
            (min(ids), max(ids), RANGE_PROBE_ROWS),
        ).fetchall()
        if len(found) < RANGE_PROBE_ROWS:
            return {row[0] for row in found}.intersection(ids)
    rows = conn.execute(
        f"""SELECT j.value FROM {id_table(dialect_of(conn))}
            WHERE EXISTS (SELECT 1 FROM state_history WHERE run_id = j.value)
               OR EXISTS (SELECT 1 FROM {table} WHERE id = j.value)""",
        (json.dumps(ids),),
    )
    return {row[0] for row in rows}


def insert_flow_runs(conn: Any, rows: Sequence[FlowRunRow]) -> None:
    if rows:
        conn.executemany(_INSERT_FLOW_RUN, rows)


def insert_task_runs(conn: Any, rows: Sequence[TaskRunRow]) -> None:
    if rows:
        conn.executemany(_INSERT_TASK_RUN, rows)


def insert_completed_task_runs(conn: Any, rows: Sequence[CompletedRun]) -> None:
    """Task runs that ran and completed plainly (``Completed``, no message, no result
    location): ``(id, flow_run_id, name, task_key, tags, start, end)``."""
    if rows:
        conn.executemany(_INSERT_COMPLETED_TASK_RUN, rows)


def insert_completed_states(conn: Any, rows: Sequence[CompletedRun]) -> None:
    """The two states of those runs: ``RUNNING`` at their start, then ``COMPLETED``."""
    if rows:
        conn.executemany(_INSERT_RUNNING, [(row[0], row[5]) for row in rows])
        conn.executemany(_INSERT_COMPLETED, [(row[0], row[6]) for row in rows])


def insert_states(conn: Any, rows: Sequence[StateRow]) -> None:
    if rows:
        conn.executemany(_INSERT_STATE, rows)


def insert_settled_states(conn: Any, running: Sequence[tuple[str, float]],
                          finals: Sequence[tuple[str, str, str | None, str | None, float]]) -> None:
    """The states of runs settled in one event: ``(run_id, ts)`` of their RUNNING
    states, then ``(run_id, type, name, message, ts)`` of their final ones."""
    if running:
        conn.executemany(_INSERT_RUNNING, running)
    if finals:
        conn.executemany(_INSERT_FINAL, finals)


def insert_logs(conn: Any, rows: Sequence[LogRow]) -> None:
    if rows:
        conn.executemany(_INSERT_LOG, rows)


_INSERT_EDGE = ("INSERT INTO task_run_edges (flow_run_id, upstream_id, downstream_id) "
                "VALUES (?, ?, ?) ON CONFLICT DO NOTHING")


def insert_edges(conn: Any, edges: Sequence[tuple[str | None, str, str]]) -> None:
    """``(flow run, upstream task run, downstream task run)`` edges; one already there is
    left as it is (a resent batch, a retried run)."""
    conn.executemany(_INSERT_EDGE, edges)


def update_heartbeats(conn: Any, beats: Iterable[tuple[float, str]]) -> None:
    conn.executemany(_HEARTBEAT, beats)


def existing(conn: Any, table: str, ids: Iterable[str]) -> set[str]:
    """Those of ``ids`` that have a row in ``table``."""
    ids = list(ids)
    if not ids:
        return set()
    rows = conn.execute(
        f"""SELECT j.value FROM {id_table(dialect_of(conn))}
            WHERE EXISTS (SELECT 1 FROM {table} WHERE id = j.value)""",
        (json.dumps(ids),),
    )
    return {row[0] for row in rows}


def apply_latest(conn: Any, table: str, latest: Iterable[tuple[str, LatestState]]) -> None:
    """Apply a batch's latest state to existing rows of ``table`` (``flow_runs``/``task_runs``).

    Equivalent to a refresh from the history when the history before this batch
    is already reflected in the row: the batch's state wins unless the row holds
    a later one, and the first RUNNING time only moves earlier. (SQLite and
    PostgreSQL evaluate every ``SET`` expression on the old row.)
    """
    conn.executemany(
        _APPLY_LATEST.format(table=table),
        (
            (ts, type_, name, message, end, location, start, run)
            for run, (type_, name, message, ts, start, end, location) in latest
        ),
    )


def refresh_flow_runs(conn: Any, ids: Iterable[str]) -> None:
    """Re-derive the latest-state columns of these flow runs from their history."""
    conn.executemany(_REFRESH_FLOW_RUNS, ((i,) for i in ids))


def refresh_task_runs(conn: Any, ids: Iterable[str]) -> None:
    """Re-derive the latest-state columns of these task runs from their history."""
    conn.executemany(_REFRESH_TASK_RUNS, ((i,) for i in ids))
