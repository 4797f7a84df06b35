"""One scheduler tick against the run record: due schedules in, SCHEDULED runs and ticks out.

Exactly once, from the database rather than from timing, on SQLite and PostgreSQL:

- the due schedules (active, of unpaused deployments, ``next_fire_time <= now``)
  are read without a lock, then handled in batches, each in one write transaction;
- for each schedule the transaction first moves ``next_fire_time`` by
  compare-and-set (``UPDATE ... WHERE next_fire_time = <the value read>``): a
  scheduler that loses that race leaves the schedule to the winner, having written
  nothing for it;
- the winner inserts one flow run per fire time it decided to create, keyed
  ``<deployment id>:<slug>:<fire time in UTC>`` under a unique index
  (``INSERT ... ON CONFLICT DO NOTHING``): even a stale decision (a reset
  schedule, a redeploy) cannot create a time's run twice; that case is recorded as
  a ``duplicate`` tick;
- every decision is a row of ``schedule_ticks`` (created / skipped with the
  reason / cancelled-late / duplicate), written in the same transaction.

Schedulers process batches in a random order, so two of them split the work
rather than queue behind each other for the same rows. Tick rows older than 30
days are deleted, at most once an hour per process.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from fluvial.scheduler._plan import (
    CREATE,
    DUPLICATE,
    ENDED,
    Plan,
    first_fire_time,
    idempotency_key,
    plan,
)
from fluvial.schedules import Schedule, schedule_from_dict

__all__ = ["TickSummary", "run_scheduler_once"]

logger = logging.getLogger("fluvial.scheduler")

BATCH_SIZE = 200
# ticks older than this are deleted, at most once an hour by each scheduler process
TICK_RETENTION_S = 30 * 86400
_PRUNE_EVERY_S = 3600
_last_prune: list[float] = []  # the `now` of this process's last pruning
FINAL_STATE_TYPES = ("COMPLETED", "FAILED", "CANCELLED", "CRASHED")
_FINAL_SQL = ", ".join(f"'{t}'" for t in FINAL_STATE_TYPES)

_DUE = """
SELECT s.id, s.deployment_id, s.slug, s.schedule, s.next_fire_time,
       d.flow_name, d.parameters, d.tags, d.work_pool
FROM deployment_schedules s JOIN deployments d ON d.id = s.deployment_id
WHERE s.active = 1 AND d.paused = 0
  AND (s.next_fire_time IS NULL OR s.next_fire_time <= ?)
"""
_ACTIVE_RUN = f"""
SELECT id, state_type FROM flow_runs
WHERE deployment_id = ?1 AND state_type NOT IN ({_FINAL_SQL})
  AND (state_type <> 'SCHEDULED' OR scheduled_start_time <= ?2)
LIMIT 1
"""
# last_fired_time: the newest fire time this decision creates a run for (if any)
_CAS = ("UPDATE deployment_schedules SET next_fire_time = ?, "
        "last_fired_time = coalesce(?, last_fired_time) WHERE id = ? AND next_fire_time = ?")
_CAS_NULL = ("UPDATE deployment_schedules SET next_fire_time = ? "
             "WHERE id = ? AND next_fire_time IS NULL")
_INSERT_RUN = """
INSERT INTO flow_runs (id, name, flow_name, parameters, tags, created, state_type, state_name,
    state_ts, deployment_id, idempotency_key, scheduled_start_time, work_pool, job_parameters,
    attempt)
VALUES (?, ?, ?, ?, ?, ?, 'SCHEDULED', 'Scheduled', ?, ?, ?, ?, ?, ?, 0)
ON CONFLICT DO NOTHING
"""
_INSERT_STATE = """
INSERT INTO state_history (run_id, type, name, message, ts, result_location)
VALUES (?, 'SCHEDULED', 'Scheduled', ?, ?, NULL)
"""
_EXISTING_RUN = "SELECT id FROM flow_runs WHERE idempotency_key = ?"
_INSERT_TICK = """
INSERT INTO schedule_ticks (deployment_id, schedule_slug, fire_time, decided_at, outcome,
    reason, flow_run_id)
VALUES (?, ?, ?, ?, ?, ?, ?)
"""


@dataclass
class TickSummary:
    """What one call of :func:`run_scheduler_once` did."""

    due: int = 0  # schedules read as due
    handled: int = 0  # of those, decided by this scheduler (the others by a competitor)
    created: list[str] = field(default_factory=list)  # flow run ids
    skipped: int = 0
    cancelled_late: int = 0
    duplicates: int = 0
    held: int = 0  # buffer_one: due times waiting for an active run to end


@lru_cache(maxsize=4096)
def _schedule(body: str) -> Schedule:
    return schedule_from_dict(json.loads(body))


def _as_datetime(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _timestamp(value: float | datetime | None) -> float:
    if value is None:
        return time.time()
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("run_scheduler_once: now must be timezone-aware or a timestamp")
        return value.timestamp()
    return float(value)


def run_scheduler_once(
    conn: Any = None,
    now: float | datetime | None = None,
    *,
    deployment_ids: Iterable[str] | None = None,
    batch_size: int = BATCH_SIZE,
) -> TickSummary:
    """Decide every due fire time once, as of ``now`` (default: the wall clock).

    ``conn`` is an open store connection (default: one opened and closed here);
    ``deployment_ids`` limits the tick to those deployments (``serve()``).
    Safe to call from any number of processes at once (see the module docstring).
    """
    from fluvial.store.connection import open_database

    if conn is None:
        conn = open_database()
        try:
            return run_scheduler_once(conn, now, deployment_ids=deployment_ids,
                                      batch_size=batch_size)
        finally:
            conn.close()
    now_ts = _timestamp(now)
    rows = conn.execute(_DUE, (now_ts,)).fetchall()
    if deployment_ids is not None:
        wanted = {str(d) for d in deployment_ids}
        rows = [r for r in rows if r[1] in wanted]
    summary = TickSummary(due=len(rows))
    random.shuffle(rows)
    for start in range(0, len(rows), batch_size):
        _handle_batch(conn, rows[start:start + batch_size], now_ts, summary)
    _prune_ticks(conn, now_ts)
    return summary


def _prune_ticks(conn: Any, now_ts: float) -> None:
    """Delete ticks older than :data:`TICK_RETENTION_S`, at most hourly per process."""
    from fluvial.store.connection import transaction

    if _last_prune and 0 <= now_ts - _last_prune[0] < _PRUNE_EVERY_S:
        return
    _last_prune[:] = [now_ts]
    with transaction(conn):
        conn.execute("DELETE FROM schedule_ticks WHERE decided_at < ?",
                     (now_ts - TICK_RETENTION_S,))


@dataclass
class _Writes:
    """Rows a batch writes with one ``executemany`` each, once its schedules are decided."""

    states: list[tuple[Any, ...]] = field(default_factory=list)
    ticks: list[tuple[Any, ...]] = field(default_factory=list)


def _handle_batch(conn: Any, rows: Sequence[Any], now_ts: float, summary: TickSummary) -> None:
    from fluvial.store.connection import transaction

    now = _as_datetime(now_ts)
    local = TickSummary()
    with transaction(conn):
        writes = _Writes()
        for row in rows:
            _handle_schedule(conn, row, now, now_ts, writes, local)
        if writes.states:
            conn.executemany(_INSERT_STATE, writes.states)
        if writes.ticks:
            conn.executemany(_INSERT_TICK, writes.ticks)
    # only counted once committed: a rolled-back batch created nothing
    summary.handled += local.handled
    summary.created += local.created
    summary.skipped += local.skipped
    summary.cancelled_late += local.cancelled_late
    summary.duplicates += local.duplicates
    summary.held += local.held


def _handle_schedule(conn: Any, row: Sequence[Any], now: datetime, now_ts: float,
                     writes: _Writes, summary: TickSummary) -> None:
    schedule_id, deployment_id, slug, body, stored, *deployment = row
    try:
        schedule = _schedule(body)
    except (ValueError, TypeError) as exc:
        # a schedule this fluvial cannot read: say so once, and stop looking at it
        if _cas(conn, schedule_id, stored, ENDED.timestamp()):
            writes.ticks.append((deployment_id, slug, stored, now_ts, "skipped",
                                 f"the schedule cannot be read: {exc}", None))
        return
    if stored is None:  # a new or reset schedule starts at its first fire time after now
        if _cas(conn, schedule_id, None, first_fire_time(schedule, now).timestamp()):
            summary.handled += 1
        return
    current = _as_datetime(stored)
    active = None
    if schedule.overlap != "allow_all":
        found = conn.execute(_ACTIVE_RUN, (deployment_id, now_ts)).fetchone()
        active = f"run {found[0]} ({found[1]})" if found else None
    try:
        decided: Plan = plan(schedule, current, now, active)
    except Exception:  # a bug with one schedule must not hold up the others of its batch
        logger.exception("scheduler: cannot decide schedule %s of deployment %s; left for "
                         "the next tick", slug, deployment_id)
        return
    if decided.next_fire_time.timestamp() == stored and not decided.decisions:
        summary.handled += 1  # held, or nothing due after all: nothing to write
        summary.held += decided.held is not None
        return
    creates = [d.fire_time.timestamp() for d in decided.decisions if d.outcome == CREATE]
    if not _cas(conn, schedule_id, stored, decided.next_fire_time.timestamp(),
                max(creates, default=None)):
        return  # another scheduler decided it
    summary.handled += 1
    summary.held += decided.held is not None
    for decision in decided.decisions:
        fire_ts = decision.fire_time.timestamp()
        outcome, reason, run_id = decision.outcome, decision.reason, None
        if outcome == CREATE:
            key = idempotency_key(deployment_id, slug, decision.fire_time)
            # the run's row and Scheduled state are stamped no later than the wall clock:
            # an injected clock ahead of it must not outrank the states the run records later
            stamp = min(now_ts, time.time())
            run_id, created = _create_run(conn, deployment, deployment_id, schedule, key,
                                          fire_ts, stamp)
            if created and run_id is not None:
                summary.created.append(run_id)
                writes.states.append((run_id, f"scheduled by {slug}", stamp))
            else:
                outcome = DUPLICATE
                reason = f"a run with key {key!r} exists already; not created again"
                summary.duplicates += 1
        elif outcome == "skipped":
            summary.skipped += 1
        else:
            summary.cancelled_late += 1
        writes.ticks.append((deployment_id, slug, fire_ts, now_ts, outcome, reason, run_id))


def _cas(conn: Any, schedule_id: str, old: float | None, new: float,
         fired: float | None = None) -> bool:
    if old is None:
        return bool(conn.execute(_CAS_NULL, (new, schedule_id)).rowcount)
    return bool(conn.execute(_CAS, (new, fired, schedule_id, old)).rowcount)


def _create_run(conn: Any, deployment: Sequence[Any], deployment_id: str, schedule: Schedule,
                key: str, fire_ts: float, now_ts: float) -> tuple[str | None, bool]:
    """Insert the fire time's SCHEDULED run; (its id, True), or (the existing run's id, False)."""
    from fluvial.orchestration.flow_engine import generate_run_name

    flow_name, parameters, tags, work_pool = deployment
    merged = {**json.loads(parameters or "{}"), **schedule.parameters}
    body = json.dumps(merged, default=repr)
    run_id = str(uuid.uuid4())
    inserted = conn.execute(_INSERT_RUN, (
        run_id, generate_run_name(), flow_name, body, tags or "[]", now_ts, now_ts,
        deployment_id, key, fire_ts, work_pool, body,
    )).rowcount
    if not inserted:
        existing = conn.execute(_EXISTING_RUN, (key,)).fetchone()
        return (existing[0] if existing else None), False
    return run_id, True
